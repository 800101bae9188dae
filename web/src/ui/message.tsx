// One message (body with mentions, reactions, thread summary, actions), an optimistic bubble, and the
// composer (with `@` mentions) that the conversation and a thread both use.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { JSX } from "preact";

import type { Conversation, Message } from "../api/types";
import type { AppState } from "../state/app";
import { candidates, insertMention, mentionQuery, splitMentions, type Mentionable } from "../state/mentions";
import { canPin, formatWait, secondsLeft, slowModeApplies, slowModeLabel } from "../state/moderation";
import { chips, COMMON_REACTIONS } from "../state/reactions";
import type { Pending } from "../state/timeline";
import { allDone, MAX_FILES } from "../state/uploads";
import { ErrorLine, useAction, useTickUntil } from "./common";
import { AttachmentNames, Attachments, UploadList } from "./attachments";
import { ReportForm } from "./moderation";

export const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** Today: the time; earlier: the day and the time. */
export function when(iso: string): string {
  const at = new Date(iso);
  const today = new Date().toDateString() === at.toDateString();
  return today ? time(iso) : `${at.toLocaleDateString([], { month: "short", day: "numeric" })} ${time(iso)}`;
}

export function MessageBody({ state, message }: { state: AppState; message: Message }) {
  if (message.deleted) return <em>Message deleted</em>;
  const mentioned: Mentionable[] = [];
  for (const id of message.mentions ?? []) {
    const user = state.user(id);
    if (user) mentioned.push({ id, username: user.username });
  }
  return (
    <>
      {splitMentions(message.body, mentioned).map((part, i) =>
        part.userId ? (
          <span key={i} class={`mention ${part.userId === state.me?.id ? "me" : ""}`} data-testid="mention">
            {part.text}
          </span>
        ) : (
          part.text
        ),
      )}
    </>
  );
}

function Reactions({ state, message }: { state: AppState; message: Message }) {
  const action = useAction();
  const [picking, setPicking] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (picking) first.current?.focus();
  }, [picking]);
  const shown = chips(message);
  const react = (reaction: string) => {
    setPicking(false);
    void action.run(() => state.toggleReaction(message.conversationId, message.id, reaction));
  };
  return (
    <div class="reactions" data-testid="reactions">
      {shown.map((c) => (
        <button
          type="button"
          key={c.reaction}
          class={`chip ${c.mine ? "mine" : ""}`}
          aria-pressed={c.mine}
          aria-label={`${c.reaction} ${c.count}${c.mine ? ", including you" : ""}`}
          title={c.mine ? "Take your reaction back" : "React with this too"}
          disabled={action.busy}
          data-testid="reaction"
          data-reaction={c.reaction}
          onClick={() => react(c.reaction)}
        >
          {c.reaction} <span class="count">{c.count}</span>
        </button>
      ))}
      <span
        class="picker-anchor"
        onFocusOut={(e) => {
          if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setPicking(false);
        }}
      >
        <button
          type="button"
          ref={toggle}
          class="chip add"
          aria-label="Add a reaction"
          aria-expanded={picking}
          aria-haspopup="true"
          title="Add a reaction"
          onClick={() => setPicking(!picking)}
        >
          ☺+
        </button>
        {picking && (
          <div
            class="picker"
            role="group"
            aria-label="Pick a reaction"
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                e.stopPropagation();
                setPicking(false);
                toggle.current?.focus();
              }
            }}
          >
            {COMMON_REACTIONS.map((r, i) => (
              <button
                type="button"
                key={r}
                aria-label={`React with ${r}`}
                ref={i === 0 ? first : undefined}
                onClick={() => react(r)}
              >
                {r}
              </button>
            ))}
          </div>
        )}
      </span>
      {action.error && (
        <span class="error" role="alert">
          {action.error}
        </span>
      )}
    </div>
  );
}

export function MessageItem(props: {
  state: AppState;
  conversation: Conversation;
  message: Message;
  seenBy?: string[];
  /** In the thread panel: no "Reply in thread" and no thread summary. */
  inThread?: boolean;
}) {
  const { state, conversation, message, seenBy = [], inThread = false } = props;
  const mine = message.senderId === state.me?.id;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.body);
  const [reporting, setReporting] = useState(false);
  const action = useAction();
  const canDelete = mine || conversation.myRole === "owner" || conversation.myRole === "admin";
  const pinned = state.isPinned(conversation.id, message.id);
  const mentionsMe = !!state.me && (message.mentions ?? []).includes(state.me.id);
  const replies = message.replyCount ?? 0;
  return (
    <li
      class={`message ${mine ? "mine" : ""} ${message.deleted ? "deleted" : ""} ${mentionsMe ? "mentions-me" : ""}`}
      data-testid="message"
      data-id={message.id}
      data-seq={message.seq}
      data-pinned={pinned ? "true" : undefined}
    >
      <div class="meta">
        <span class="sender">{mine ? "You" : state.name(message.senderId)}</span>
        <time dateTime={message.createdAt}>{time(message.createdAt)}</time>
        {message.editedAt && !message.deleted && <span class="muted"> (edited)</span>}
        {pinned && !message.deleted && (
          <span class="pin-mark" data-testid="pinned-mark">
            · Pinned
          </span>
        )}
      </div>
      {editing ? (
        <form
          class="edit"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(() => state.edit(conversation.id, message.id, draft)).then((ok) => ok && setEditing(false));
          }}
        >
          <label class="sr-only" for={`edit-${message.id}`}>
            Edit message
          </label>
          <textarea
            id={`edit-${message.id}`}
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={(e) => e.key === "Escape" && setEditing(false)}
            maxLength={4000}
            ref={(el) => el?.focus()}
          />
          <button type="submit" disabled={action.busy}>
            Save
          </button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        (message.body || message.deleted || !(message.attachments ?? []).length) && (
          <p class="body" data-testid="message-body">
            <MessageBody state={state} message={message} />
          </p>
        )
      )}
      {!message.deleted && <Attachments state={state} message={message} />}
      {!message.deleted && <Reactions state={state} message={message} />}
      {!inThread && replies > 0 && (
        <button
          type="button"
          class="thread-summary"
          data-testid="thread-summary"
          onClick={() => void state.openThread(conversation.id, message.id)}
        >
          {replies === 1 ? "1 reply" : `${replies} replies`}
          {message.lastReplyAt && <span class="muted"> · last {when(message.lastReplyAt)}</span>}
        </button>
      )}
      {!message.deleted && !editing && (
        <div class="actions">
          {!inThread && !message.parentMessageId && (
            <button type="button" onClick={() => void state.openThread(conversation.id, message.id)}>
              Reply in thread
            </button>
          )}
          {mine && (
            <button
              type="button"
              onClick={() => {
                setDraft(message.body);
                setEditing(true);
              }}
            >
              Edit
            </button>
          )}
          {canDelete && (
            <button
              type="button"
              onClick={() => {
                if (confirm("Delete this message for everyone?")) void action.run(() => state.remove(conversation.id, message.id));
              }}
            >
              Delete
            </button>
          )}
          {canPin(conversation) && (
            <button type="button" disabled={action.busy} onClick={() => void action.run(() => state.pin(conversation.id, message.id, !pinned))}>
              {pinned ? "Unpin" : "Pin"}
            </button>
          )}
          {!mine && (
            <button type="button" aria-expanded={reporting} onClick={() => setReporting(!reporting)}>
              Report
            </button>
          )}
        </div>
      )}
      {reporting && !mine && !message.deleted && (
        <ReportForm state={state} conversationId={conversation.id} messageId={message.id} onClose={() => setReporting(false)} />
      )}
      <ErrorLine error={action.error} />
      {seenBy.length > 0 && (
        <p class="seen" data-testid="seen-by">
          Seen by {seenBy.slice(0, 3).join(", ")}
          {seenBy.length > 3 ? ` and ${seenBy.length - 3} more` : ""}
        </p>
      )}
    </li>
  );
}

export function PendingItem(props: { state: AppState; conversationId: string; pending: Pending }) {
  const { state, conversationId, pending } = props;
  const parent = pending.parentMessageId;
  return (
    <li class={`message mine pending ${pending.state}`} data-testid="pending-message">
      <div class="meta">
        <span class="sender">You</span>
        <span class="muted">
          {pending.state === "sending" ? "Sending…" : pending.state === "retrying" ? "Retrying…" : "Not sent"}
        </span>
      </div>
      {pending.body && <p class="body">{pending.body}</p>}
      <AttachmentNames attachments={pending.attachments ?? []} />
      {pending.state !== "sending" && pending.error && <p class="muted">{pending.error}</p>}
      {pending.state === "failed" && (
        <div class="actions">
          <button type="button" onClick={() => state.retry(conversationId, pending.clientMessageId, parent)}>
            Retry
          </button>
          <button type="button" onClick={() => state.discard(conversationId, pending.clientMessageId, parent)}>
            Discard
          </button>
        </div>
      )}
    </li>
  );
}

/** The composer: Enter sends, Shift+Enter breaks a line, `@` offers the members (arrows, Enter or Tab, Escape). */
export function Composer(props: {
  state: AppState;
  conversation: Conversation;
  /** Set in a thread: replies go there. */
  parentId?: string;
  onSent?: () => void;
}) {
  const { state, conversation, parentId, onSent } = props;
  const [text, setText] = useState("");
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const placeCaret = useRef<number | null>(null);
  const id = parentId ? "thread-composer" : "composer";
  const query = dismissed ? null : mentionQuery(text, caret);
  const people = query ? candidates(state.mentionable(conversation.id), query.query, state.me?.id) : [];
  const current = Math.min(active, Math.max(0, people.length - 1));
  const picker = useRef<HTMLInputElement>(null);
  const [fileErrors, setFileErrors] = useState<string[]>([]);
  const [dragging, setDragging] = useState(false);
  const uploads = state.uploads(conversation.id, parentId);
  const uploading = !allDone(uploads);
  // Held back: by slow mode (a countdown) or by a mute (until it ends).
  const waitUntil = state.sendableAt(conversation.id);
  const muted = state.me ? state.mutedUntil(conversation.id, state.me.id) : null;
  useTickUntil(waitUntil, 1000);
  useTickUntil(muted ? muted.getTime() : null, 60_000);
  const wait = secondsLeft(waitUntil, Date.now());
  const slow = slowModeApplies(conversation);
  const canSend = (!!text.trim() || uploads.length > 0) && !uploading && wait === 0 && !muted;
  const attach = (files: File[]) => {
    if (files.length > 0) setFileErrors(state.attach(conversation.id, parentId, files));
  };

  const submit = (e?: JSX.TargetedEvent<HTMLFormElement>) => {
    e?.preventDefault();
    if (!canSend || !state.send(conversation.id, text, parentId)) return;
    setFileErrors([]);
    setText("");
    setCaret(0);
    onSent?.();
  };
  const pick = (person: Mentionable) => {
    if (!query) return;
    const next = insertMention(text, query.start, caret, person.username);
    setText(next.text);
    setCaret(next.caret);
    setActive(0);
    placeCaret.current = next.caret;
  };
  // After the render that set the new text (before the next key press): the caret after the mention.
  useLayoutEffect(() => {
    const at = placeCaret.current;
    if (at === null || !area.current) return;
    placeCaret.current = null;
    area.current.focus();
    area.current.setSelectionRange(at, at);
  });
  const track = (el: HTMLTextAreaElement) => setCaret(el.selectionStart ?? el.value.length);

  return (
    <form
      class={`composer ${dragging ? "dragging" : ""}`}
      onSubmit={submit}
      onDragOver={(e) => {
        if (!e.dataTransfer?.types.includes("Files")) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        if (!e.dataTransfer?.files.length) return;
        e.preventDefault();
        setDragging(false);
        attach([...e.dataTransfer.files]);
      }}
    >
      {muted ? (
        <p class="composer-status error" role="status" data-testid="muted-notice">
          You are muted here until {muted.toLocaleString()}: you can read, but not send or react.
        </p>
      ) : (
        slow && (
          <p class="composer-status muted" role="status" data-testid="slow-mode" data-wait={wait}>
            {wait > 0
              ? `Slow mode: you can send again in ${formatWait(wait)}.`
              : `Slow mode: one message every ${slowModeLabel(conversation.slowModeSeconds)}.`}
          </p>
        )
      )}
      <UploadList state={state} conversationId={conversation.id} parentId={parentId} uploads={uploads} />
      {fileErrors.length > 0 && (
        <ul class="error file-errors" role="alert" data-testid="file-errors">
          {fileErrors.map((error, i) => (
            <li key={i}>{error}</li>
          ))}
        </ul>
      )}
      <input
        ref={picker}
        type="file"
        multiple
        hidden
        id={`${id}-files`}
        data-testid="file-input"
        onChange={(e) => {
          attach([...(e.currentTarget.files ?? [])]);
          e.currentTarget.value = "";
        }}
      />
      <button
        type="button"
        class="attach"
        aria-label={`Attach files (up to ${MAX_FILES}, 25 MB each)`}
        title="Attach files (or drop or paste them here)"
        disabled={uploads.length >= MAX_FILES}
        onClick={() => picker.current?.click()}
      >
        +
      </button>
      <label class="sr-only" for={id}>
        {parentId ? "Reply" : "Message"}
      </label>
      {people.length > 0 && (
        <ul class="mention-list" role="listbox" id={`${id}-people`} aria-label="People to mention">
          {people.map((p, i) => (
            <li
              key={p.id}
              id={`${id}-person-${p.id}`}
              role="option"
              aria-selected={i === current}
              class={i === current ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(p);
              }}
            >
              <strong>{p.displayName || p.username}</strong> <span class="muted">@{p.username}</span>
            </li>
          ))}
        </ul>
      )}
      <textarea
        id={id}
        ref={area}
        placeholder={parentId ? "Reply in thread…" : "Write a message… (Enter sends, Shift+Enter for a new line, @ to mention)"}
        value={text}
        rows={1}
        maxLength={4000}
        disabled={!!muted}
        aria-autocomplete="list"
        aria-controls={people.length > 0 ? `${id}-people` : undefined}
        aria-activedescendant={people.length > 0 ? `${id}-person-${people[current].id}` : undefined}
        onInput={(e) => {
          setText(e.currentTarget.value);
          track(e.currentTarget);
          setDismissed(false);
          setActive(0);
          state.typed(conversation.id);
        }}
        onClick={(e) => track(e.currentTarget)}
        onPaste={(e) => {
          const files = [...(e.clipboardData?.files ?? [])];
          if (files.length === 0) return;
          e.preventDefault();
          attach(files);
        }}
        onKeyUp={(e) => {
          if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") track(e.currentTarget);
        }}
        onKeyDown={(e) => {
          if (people.length > 0) {
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              const step = e.key === "ArrowDown" ? 1 : people.length - 1;
              setActive((current + step) % people.length);
              return;
            }
            if ((e.key === "Enter" && !e.shiftKey && !e.isComposing) || e.key === "Tab") {
              e.preventDefault();
              pick(people[current]);
              return;
            }
            if (e.key === "Escape") {
              e.preventDefault();
              e.stopPropagation();
              setDismissed(true);
              return;
            }
          }
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <button
        type="submit"
        disabled={!canSend}
        title={uploading ? "Waiting for the files to upload" : wait > 0 ? `Slow mode: ${formatWait(wait)} to wait` : undefined}
      >
        {parentId ? "Reply" : "Send"}
      </button>
    </form>
  );
}
