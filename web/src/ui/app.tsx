import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

import type { Conversation, Member, Message, Role, UserStatus } from "../api/types";
import type { AppState } from "../state/app";
import { canModerate, isModerator } from "../state/moderation";
import { topLevel } from "../state/timeline";
import { ErrorLine, useAction, useRerender } from "./common";
import { InviteLinks, Invitations, JoinByLink, JoinPrompt } from "./invites";
import { Composer, MessageItem, PendingItem } from "./message";
import { MemberActions, ModerationSections } from "./moderation";
import { ConversationNotifications } from "./notifications";
import { PinsPanel } from "./pins";
import { SearchPanel } from "./search";
import { Settings } from "./settings";
import { SignIn } from "./signin";
import { ThreadPanel } from "./thread";

export function App({ state }: { state: AppState }) {
  useRerender(state);
  if (state.phase === "starting") return <p class="boot">Loading Parley…</p>;
  if (state.phase === "signed-out") return <SignIn state={state} />;
  return <Shell state={state} />;
}

function SocketBadge({ state }: { state: AppState }) {
  const label = {
    connecting: "Connecting…",
    open: "Live",
    reconnecting: "Reconnecting…",
    stopped: "Offline",
  }[state.socket];
  return (
    <span class={`socket socket-${state.socket}`} role="status" data-testid="socket-state">
      {label}
    </span>
  );
}

function Shell({ state }: { state: AppState }) {
  const open = state.openId ? state.conversation(state.openId) : undefined;
  return (
    <div class={`shell ${open && state.view === "chats" ? "has-open" : ""}`}>
      <header class="topbar">
        <strong class="brand">Parley</strong>
        <SocketBadge state={state} />
        <nav aria-label="Main">
          <button
            type="button"
            aria-current={state.view === "chats" ? "page" : undefined}
            onClick={() => {
              state.view = "chats";
              state.emit();
            }}
          >
            Chats
            {state.invitations.length > 0 && (
              <span class="badge" data-testid="invitation-badge" aria-label={`${state.invitations.length} pending invitations`}>
                {state.invitations.length}
              </span>
            )}
          </button>
          <button
            type="button"
            aria-current={state.view === "settings" ? "page" : undefined}
            onClick={() => {
              state.view = "settings";
              state.emit();
            }}
          >
            Settings
          </button>
          <button type="button" onClick={() => void state.logout()}>
            Sign out
          </button>
        </nav>
      </header>
      {state.notice && (
        <div class="notice" role="alert">
          <span>{state.notice}</span>
          <button type="button" aria-label="Dismiss" onClick={() => state.setNotice(null)}>
            ×
          </button>
        </div>
      )}
      {state.joinCode && <JoinPrompt key={state.joinCode} state={state} code={state.joinCode} />}
      {state.view === "settings" ? (
        <Settings state={state} />
      ) : (
        <div class="chats">
          <Sidebar state={state} />
          {open ? (
            <ConversationView key={open.id} state={state} conversation={open} />
          ) : (
            <section class="empty-pane">
              <p>Pick a conversation, or start one with someone’s username.</p>
            </section>
          )}
        </div>
      )}
    </div>
  );
}

function Sidebar({ state }: { state: AppState }) {
  const direct = useAction();
  const group = useAction();
  const [username, setUsername] = useState("");
  const [groupName, setGroupName] = useState("");
  const [groupMembers, setGroupMembers] = useState("");
  return (
    <aside class="sidebar" aria-label="Conversations">
      <SearchPanel state={state} />
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void direct.run(() => state.openDirectWith(username)).then((ok) => ok && setUsername(""));
        }}
      >
        <label class="grow">
          <span class="sr-only">Username to message</span>
          <input
            name="direct-username"
            placeholder="Message a username…"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            required
            autocomplete="off"
          />
        </label>
        <button type="submit" disabled={direct.busy}>
          Open
        </button>
      </form>
      <ErrorLine error={direct.error} />
      <Invitations state={state} />
      <details class="new-group">
        <summary>New group</summary>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const names = groupMembers.split(/[\s,]+/).filter(Boolean);
            void group.run(() => state.createGroup(groupName, names)).then((ok) => {
              if (ok) {
                setGroupName("");
                setGroupMembers("");
              }
            });
          }}
        >
          <label>
            Group name
            <input value={groupName} onInput={(e) => setGroupName(e.currentTarget.value)} required maxLength={100} />
          </label>
          <label>
            Members (usernames, comma separated)
            <input value={groupMembers} onInput={(e) => setGroupMembers(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={group.busy}>
            Create group
          </button>
          <ErrorLine error={group.error} />
        </form>
      </details>
      <JoinByLink state={state} />
      {!state.conversationsLoaded && !state.conversationsError && <p class="muted">Loading conversations…</p>}
      {state.conversationsError && (
        <div>
          <ErrorLine error={state.conversationsError} />
          <button type="button" onClick={() => void state.loadConversations()}>
            Try again
          </button>
        </div>
      )}
      {state.conversationsLoaded && state.conversations.length === 0 && (
        <p class="muted" data-testid="no-conversations">
          No conversations yet.
        </p>
      )}
      <ul class="conversation-list" data-testid="conversation-list">
        {state.conversations.map((c) => (
          <li key={c.id}>
            <button
              type="button"
              class={`conversation ${state.openId === c.id ? "active" : ""}`}
              aria-current={state.openId === c.id ? "true" : undefined}
              onClick={() => void state.open(c.id)}
            >
              <span class="title">
                {state.title(c)}
                {c.type === "group" && <span class="muted"> · {c.memberCount}</span>}
              </span>
              <span class="preview">
                {c.lastMessage
                  ? c.lastMessage.deleted
                    ? "Message deleted"
                    : (c.lastMessage.parentMessageId ? "↳ " : "") + preview(c.lastMessage)
                  : "No messages yet"}
              </span>
              {state.openId !== c.id && (c.unreadCount > 0 || (c.mentionCount ?? 0) > 0) && (
                <span class="badges">
                  {(c.mentionCount ?? 0) > 0 && (
                    <span class="badge mention-badge" data-testid="mention-badge" aria-label={`${c.mentionCount} mentioning you`}>
                      @{c.mentionCount}
                    </span>
                  )}
                  {c.unreadCount > 0 && (
                    <span class="badge" aria-label={`${c.unreadCount} unread`}>
                      {c.unreadCount}
                    </span>
                  )}
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
      {state.conversationsCursor && (
        <button type="button" onClick={() => void state.loadConversations(true)}>
          Load more conversations
        </button>
      )}
    </aside>
  );
}

/** A message in the conversation list: its text, or what it attaches. */
function preview(m: Message): string {
  if (m.body) return m.body;
  const files = m.attachments ?? [];
  if (files.length === 1) return `Attachment: ${files[0].fileName}`;
  return files.length > 1 ? `${files.length} attachments` : "";
}

function Presence({ state, userId }: { state: AppState; userId: string }) {
  const status: UserStatus = state.user(userId)?.status ?? "offline";
  return <span class={`presence presence-${status}`} title={status} aria-label={status} />;
}

function ConversationView({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const [showMembers, setShowMembers] = useState(false);
  const [showPins, setShowPins] = useState(false);
  const pinCount = state.pins.get(conversation.id)?.length ?? 0;
  const other = conversation.type === "direct" ? state.otherMember(conversation) : undefined;
  const typers = state.typers(conversation.id);
  return (
    <section class="conversation-view" aria-label={state.title(conversation)}>
      <header class="conversation-header">
        <button type="button" class="back" aria-label="Back to conversations" onClick={() => void state.open(null)}>
          ←
        </button>
        <h2>
          {other && <Presence state={state} userId={other} />}
          {state.title(conversation)}
        </h2>
        <button type="button" aria-expanded={showPins} data-testid="pins-toggle" onClick={() => setShowPins(!showPins)}>
          Pinned ({pinCount})
        </button>
        <button type="button" aria-expanded={showMembers} onClick={() => setShowMembers(!showMembers)}>
          {conversation.type === "group" ? "Members" : "Details"}
        </button>
      </header>
      <div class="conversation-body">
        <MessageList state={state} conversation={conversation} />
        {state.threadId && <ThreadPanel key={state.threadId} state={state} conversation={conversation} parentId={state.threadId} />}
        {showPins && <PinsPanel state={state} conversation={conversation} onClose={() => setShowPins(false)} />}
        {showMembers && <MembersPanel state={state} conversation={conversation} />}
      </div>
      <p class="typing" aria-live="polite" data-testid="typing">
        {typers.length > 0 && `${typers.map((id) => state.name(id)).join(", ")} ${typers.length > 1 ? "are" : "is"} typing…`}
      </p>
      <Composer state={state} conversation={conversation} />
    </section>
  );
}

function MessageList({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const timeline = state.timeline(conversation.id);
  const scroller = useRef<HTMLDivElement>(null);
  const top = useRef<HTMLDivElement>(null);
  const older = useAction();
  const anchor = useRef<{ first?: string; height: number; atBottom: boolean }>({ height: 0, atBottom: true });
  const members = state.members.get(conversation.id) ?? [];

  // Keep the view still when older messages are prepended; follow new ones when at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const first = shown[0]?.id;
    const before = anchor.current;
    if (before.first && first !== before.first && !before.atBottom) {
      el.scrollTop += el.scrollHeight - before.height;
    } else if (before.atBottom) {
      el.scrollTop = el.scrollHeight;
    }
    anchor.current = { first, height: el.scrollHeight, atBottom: before.atBottom };
  });

  useEffect(() => {
    const el = top.current;
    if (!el || !scroller.current) return;
    const observer = new IntersectionObserver(
      (entries) => {
        const t = state.timeline(conversation.id);
        if (entries.some((e) => e.isIntersecting) && t.loaded && t.hasOlder && !older.busy) {
          void older.run(() => state.loadOlder(conversation.id));
        }
      },
      { root: scroller.current, rootMargin: "200px 0px 0px 0px" },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [conversation.id, timeline.loaded, timeline.olderCursor]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    anchor.current.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    anchor.current.height = el.scrollHeight;
  };

  const mine = state.me?.id;
  // Thread replies stay in the timeline (for seq gaps) but show in their thread.
  const shown = topLevel(timeline.messages);
  const lastMine = [...shown].reverse().find((m) => m.senderId === mine && !m.deleted);
  const seenBy = lastMine
    ? members.filter((m) => m.userId !== mine && m.readSeq >= lastMine.seq).map((m) => state.name(m.userId))
    : [];

  return (
    <div class="messages" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label="Messages" data-testid="messages">
      <div ref={top} class="top-sentinel">
        {older.busy && <p class="muted">Loading older messages…</p>}
        {older.error && (
          <p class="error" role="alert">
            {older.error}{" "}
            <button type="button" onClick={() => void older.run(() => state.loadOlder(conversation.id))}>
              Try again
            </button>
          </p>
        )}
        {timeline.loaded && !timeline.hasOlder && timeline.messages.length > 0 && (
          <p class="muted">This is the beginning of the conversation.</p>
        )}
      </div>
      {!timeline.loaded && <p class="muted">Loading messages…</p>}
      {timeline.loaded && shown.length === 0 && timeline.pending.length === 0 && (
        <p class="muted">No messages yet. Say hello!</p>
      )}
      <ol class="message-list">
        {shown.map((m) => (
          <MessageItem
            key={m.id}
            state={state}
            conversation={conversation}
            message={m}
            seenBy={m === lastMine ? seenBy : []}
          />
        ))}
        {timeline.pending.map((p) => (
          <PendingItem key={p.clientMessageId} state={state} conversationId={conversation.id} pending={p} />
        ))}
      </ol>
    </div>
  );
}

function MembersPanel({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const members: Member[] = state.members.get(conversation.id) ?? [];
  const action = useAction();
  const [add, setAdd] = useState("");
  const [invited, setInvited] = useState<string | null>(null);
  const [name, setName] = useState(conversation.name ?? "");
  const me = state.me?.id;
  const myRole = conversation.myRole;
  const manage = myRole === "owner" || myRole === "admin";
  const group = conversation.type === "group";
  const refresh = async () => {
    await state.loadMembers(conversation.id);
    state.upsertConversation(await state.api.conversation(conversation.id));
  };
  return (
    <aside class="members" aria-label="Members">
      <h3>{group ? `Members (${members.length})` : "Details"}</h3>
      {group && manage && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => state.upsertConversation(await state.api.rename(conversation.id, name.trim())));
          }}
        >
          <label class="grow">
            <span class="sr-only">Group name</span>
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={100} required />
          </label>
          <button type="submit">Rename</button>
        </form>
      )}
      <ul>
        {members.map((m) => (
          <li key={m.userId} class="member">
            <Presence state={state} userId={m.userId} />
            <span class="grow">
              {state.name(m.userId)}
              {m.userId === me && " (you)"} <span class="muted">{m.role}</span>
            </span>
            {group && myRole === "owner" && m.userId !== me && (
              <>
                <label class="sr-only" for={`role-${m.userId}`}>
                  Role of {state.name(m.userId)}
                </label>
                <select
                  id={`role-${m.userId}`}
                  value={m.role}
                  onChange={(e) => {
                    const role = e.currentTarget.value as Role;
                    void action.run(async () => {
                      if (role === "owner") {
                        if (!confirm(`Make ${state.name(m.userId)} the owner? You become an admin.`)) return;
                        await state.api.transferOwnership(conversation.id, m.userId);
                      } else await state.api.setRole(conversation.id, m.userId, role);
                      await refresh();
                    });
                  }}
                >
                  <option value="member">member</option>
                  <option value="admin">admin</option>
                  <option value="owner">owner</option>
                </select>
              </>
            )}
            {canModerate(myRole, m.role, m.userId === me, group) && (
              <button
                type="button"
                onClick={() => void action.run(async () => {
                  await state.api.removeMember(conversation.id, m.userId);
                  await refresh();
                })}
              >
                Remove
              </button>
            )}
            {!group && m.userId !== me && <BlockButton state={state} userId={m.userId} />}
            <MemberActions state={state} conversation={conversation} member={m} />
          </li>
        ))}
      </ul>
      {group && manage && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => {
              const ids: string[] = [];
              for (const username of add.split(/[\s,]+/).filter(Boolean)) {
                const user = await state.api.userByName(username.toLowerCase());
                if (!user) throw new Error(`Nobody is called ${username}.`);
                state.users.set(user.id, user);
                ids.push(user.id);
              }
              const answer = await state.api.addMembers(conversation.id, ids);
              setInvited(answer.invited.length > 0 ? state.invitedNotice(answer.invited) : null);
              setAdd("");
              await refresh();
            });
          }}
        >
          <label class="grow">
            <span class="sr-only">Usernames to add</span>
            <input placeholder="Add usernames…" value={add} onInput={(e) => setAdd(e.currentTarget.value)} required />
          </label>
          <button type="submit" disabled={action.busy}>
            Add
          </button>
        </form>
      )}
      {invited && (
        <p class="muted" role="status" data-testid="invited-notice">
          {invited}
        </p>
      )}
      {isModerator(conversation) && <InviteLinks state={state} conversation={conversation} />}
      <ModerationSections state={state} conversation={conversation} />
      <ConversationNotifications state={state} conversationId={conversation.id} />
      {group && (
        <button
          type="button"
          class="danger"
          onClick={() => {
            if (!confirm("Leave this group?")) return;
            void action.run(async () => {
              await state.api.removeMember(conversation.id, me!);
              state.forgetConversation(conversation.id);
            });
          }}
        >
          Leave group
        </button>
      )}
      <ErrorLine error={action.error} />
    </aside>
  );
}

export function BlockButton({ state, userId }: { state: AppState; userId: string }) {
  const action = useAction();
  const [blocked, setBlocked] = useState<boolean | null>(null);
  return (
    <>
      <button
        type="button"
        onClick={() =>
          void action.run(async () => {
            if (blocked) await state.api.unblock(userId);
            else await state.api.block(userId);
            setBlocked(!blocked);
          })
        }
      >
        {blocked ? "Unblock" : "Block"}
      </button>
      {action.error && <span class="error">{action.error}</span>}
    </>
  );
}
