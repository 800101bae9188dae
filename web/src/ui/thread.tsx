// The thread panel: the parent, its replies oldest first (more load as the end scrolls into view), and
// a composer whose replies carry `parentMessageId`. Beside the conversation on a desktop; over it at 360 px.

import { useEffect, useLayoutEffect, useRef } from "preact/hooks";

import type { Conversation } from "../api/types";
import type { AppState } from "../state/app";
import { ErrorLine, useAction } from "./common";
import { Composer, MessageItem, PendingItem } from "./message";

export function ThreadPanel({ state, conversation, parentId }: { state: AppState; conversation: Conversation; parentId: string }) {
  const thread = state.thread(parentId);
  const parent = state.findMessage(conversation.id, parentId) ?? thread?.parent;
  const more = useAction();
  const scroller = useRef<HTMLDivElement>(null);
  const end = useRef<HTMLDivElement>(null);
  const follow = useRef(false);
  const panel = useRef<HTMLElement>(null);
  const replies = thread?.replies.messages ?? [];
  const pending = thread?.replies.pending ?? [];
  const loaded = thread?.replies.loaded ?? false;
  const hasMore = thread?.replies.hasOlder ?? false;

  useEffect(() => {
    panel.current?.querySelector<HTMLElement>("h3")?.focus();
  }, [parentId]);

  // Follow new replies when at the end (and always after sending one).
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  });

  useEffect(() => {
    const el = end.current;
    if (!el || !scroller.current) return;
    const observer = new IntersectionObserver(
      (entries) => {
        const t = state.thread(parentId);
        if (entries.some((e) => e.isIntersecting) && t?.replies.loaded && t.replies.hasOlder && !more.busy) {
          void more.run(() => state.loadMoreReplies(parentId));
        }
      },
      { root: scroller.current, rootMargin: "0px 0px 200px 0px" },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [parentId, loaded, thread?.replies.olderCursor]);

  const onScroll = () => {
    const el = scroller.current;
    if (el) follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  return (
    <aside
      class="thread"
      aria-label="Thread"
      data-testid="thread"
      ref={panel}
      onKeyDown={(e) => {
        if (e.key === "Escape" && !(e.target as HTMLElement).closest?.("form.edit")) state.closeThread();
      }}
    >
      <header class="thread-header">
        <h3 tabIndex={-1}>Thread</h3>
        <button type="button" aria-label="Close thread" onClick={() => state.closeThread()}>
          ×
        </button>
      </header>
      <div class="thread-body" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label="Replies">
        {parent ? (
          <ol class="message-list thread-parent">
            <MessageItem state={state} conversation={conversation} message={parent} inThread />
          </ol>
        ) : (
          !thread?.error && <p class="muted">Loading the thread…</p>
        )}
        {thread?.error && (
          <div>
            <ErrorLine error={thread.error} />
            <button type="button" onClick={() => void state.openThread(conversation.id, parentId)}>
              Try again
            </button>
          </div>
        )}
        {parent && (parent.replyCount ?? 0) > 0 && (
          <p class="muted thread-count" data-testid="thread-count">
            {(parent.replyCount ?? 0) === 1 ? "1 reply" : `${parent.replyCount ?? 0} replies`}
          </p>
        )}
        {!loaded && !thread?.error && parent && <p class="muted">Loading replies…</p>}
        {loaded && replies.length === 0 && pending.length === 0 && <p class="muted">No replies yet. Start the thread below.</p>}
        <ol class="message-list" data-testid="replies">
          {replies.map((m) => (
            <MessageItem key={m.id} state={state} conversation={conversation} message={m} inThread />
          ))}
          {pending.map((p) => (
            <PendingItem key={p.clientMessageId} state={state} conversationId={conversation.id} pending={p} />
          ))}
        </ol>
        <div ref={end} class="end-sentinel">
          {more.busy && <p class="muted">Loading more replies…</p>}
          {more.error && (
            <p class="error" role="alert">
              {more.error}{" "}
              <button type="button" onClick={() => void more.run(() => state.loadMoreReplies(parentId))}>
                Try again
              </button>
            </p>
          )}
          {loaded && hasMore && !more.busy && !more.error && (
            <button type="button" onClick={() => void more.run(() => state.loadMoreReplies(parentId))}>
              Load more replies
            </button>
          )}
        </div>
      </div>
      {parent && !parent.deleted && (
        <Composer state={state} conversation={conversation} parentId={parentId} onSent={() => (follow.current = true)} />
      )}
    </aside>
  );
}
