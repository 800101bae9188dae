// What a `GET /sync` answer changes in what the client holds: pure functions, so the rules are
// unit-tested (the calls, and the catch-ups they may still need, are AppState's).
// - A changed conversation's view (as `GET /conversations/{id}` reads it) replaces the one held, with
//   its unread and mention counts: the server's word on what was missed. Only where live events got
//   further while the sync was on its way (a newer `lastSeq`, a newer `readSeq`) the held values stay.
// - Removed conversations (left, removed from, deleted) leave the list.
// - A changed message replaces its older copy by id and a new one is appended in `seq` order (the
//   timeline's `merge`), into timelines already loaded only (the others load when opened). A message
//   older than the held range is left for the scroll back; one past a hole after the newest held is
//   left for the per-conversation catch-up (`after=` from the newest held), which reads it anyway.
// - An answer may repeat a change (the server reads from a little before the token): merging is
//   idempotent, by id, like events.

import type { Conversation, Message } from "../api/types";
import { merge, newest, type Timeline } from "./timeline";

/** A changed conversation's view over the one held (if any). */
export function mergeView(held: Conversation | undefined, view: Conversation): Conversation {
  if (!held) return view;
  const next: Conversation = { ...held, ...view };
  if (held.lastSeq > view.lastSeq) {
    // Events brought newer messages than the sync read: the newest held, and the larger counts.
    next.lastSeq = held.lastSeq;
    next.lastMessage = held.lastMessage;
    next.unreadCount = Math.max(view.unreadCount, held.unreadCount);
    next.mentionCount = Math.max(view.mentionCount, held.mentionCount);
  }
  if (held.readSeq > view.readSeq) {
    // Read here (or on another device, by event) after the sync read: no more unread than after that.
    next.readSeq = held.readSeq;
    const after = Math.max(0, next.lastSeq - held.readSeq);
    next.unreadCount = Math.min(next.unreadCount, after);
    if (next.unreadCount === 0) next.mentionCount = 0;
  }
  return next;
}

/** The conversation list after an answer: `changed` views merged in (new ones added), `removed` dropped. */
export function mergeConversations(list: Conversation[], changed: Conversation[], removed: string[]): Conversation[] {
  const gone = new Set(removed);
  const byId = new Map(list.filter((c) => !gone.has(c.id)).map((c) => [c.id, c]));
  for (const view of changed) if (!gone.has(view.id)) byId.set(view.id, mergeView(byId.get(view.id), view));
  return [...byId.values()];
}

export interface Synced {
  timeline: Timeline;
  /** False: the answer's new messages do not follow the newest held (a hole): catch up with `after=`. */
  complete: boolean;
}

/**
 * A conversation's changed messages (ascending `seq`, current state) into its timeline, when loaded: the
 * ones in or after the held range, up to the first hole after the newest held (see the module comment).
 */
export function syncTimeline(timeline: Timeline, messages: Message[], myId?: string): Synced {
  if (!timeline.loaded || messages.length === 0) return { timeline, complete: true };
  const oldest = timeline.messages[0];
  const last = newest(timeline);
  let expected = last ? last.seq + 1 : 0;
  const taken: Message[] = [];
  for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
    if (oldest && timeline.hasOlder && m.seq < oldest.seq) continue;
    if (last && m.seq > expected) return { timeline: merge(timeline, taken, myId), complete: false };
    if (last && m.seq === expected) expected += 1;
    taken.push(m);
  }
  return { timeline: merge(timeline, taken, myId), complete: true };
}
