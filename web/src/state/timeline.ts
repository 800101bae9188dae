// One conversation's messages as the client holds them: pure functions, so the rules are unit-tested.
// - Events are at-least-once and may come out of order: dedupe by `id`, order by `seq`.
// - An edit or delete must not be undone by a late copy of an older version: `deleted` sticks, and a
//   later `editedAt` wins.
// - Optimistic bubbles are keyed by `clientMessageId` and replaced by the stored message when it
//   arrives (from the send's reply, an event, or a catch-up page, whichever comes first).
// - `seq` has no gaps: a message whose `seq` is past the newest held + 1 means something was missed,
//   and the client catches up with `after=<newest held id>`.
// - Thread replies are in the conversation's history too (they carry `parentMessageId`, and their `seq`
//   belongs to the conversation's sequence): they stay in the timeline, for the gap rule, and the
//   view shows only the messages that are no replies. A reply new to the timeline counts once on its
//   parent, and only when it is newer than the parent's `lastReplyAt` (the server's count already holds
//   older ones); a reply deleted while held takes its count back.
// - The counts and reactions on a copy: a read (it carries `myReactions`) is the server's latest word;
//   an event's copy of the same version (a redelivered `message.new`) changes nothing.

import type { Attachment, Message } from "../api/types";

export interface Pending {
  clientMessageId: string;
  body: string;
  createdAt: string;
  state: "sending" | "retrying" | "failed";
  error?: string;
  attempts: number;
  /** A thread reply's parent. */
  parentMessageId?: string;
  mentions?: string[];
  /** Uploaded (done) before the bubble was made; sent as `attachmentIds`. */
  attachments?: Attachment[];
}

export interface Timeline {
  /** Stored messages, ascending `seq`, unique `id`. */
  messages: Message[];
  /** Optimistic bubbles not yet confirmed, oldest first. */
  pending: Pending[];
  /** A cursor for older history; null once the start is reached. */
  olderCursor: string | null;
  /** True once the newest page has been loaded (before that, nothing is known). */
  loaded: boolean;
  hasOlder: boolean;
}

export const emptyTimeline = (): Timeline => ({
  messages: [],
  pending: [],
  olderCursor: null,
  loaded: false,
  hasOlder: true,
});

function rank(m: Message): [number, string] {
  return [m.deleted ? 1 : 0, m.editedAt ?? ""];
}

/** Of two copies of one message, the newer version. */
export function newer(a: Message, b: Message): Message {
  const [da, ea] = rank(a);
  const [db, eb] = rank(b);
  if (da !== db) return da > db ? a : b;
  return eb > ea ? b : a;
}

const sameMap = (a: Record<string, number> = {}, b: Record<string, number> = {}) => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
};
const sameList = (a: string[] = [], b: string[] = []) => a.length === b.length && a.every((x, i) => x === b[i]);
const sameFiles = (a: Attachment[] = [], b: Attachment[] = []) =>
  a.length === b.length && a.every((x, i) => x.id === b[i].id && x.url === b[i].url);

/** Two copies of one message as one: the newer version's content, the freshest counts and reactions. */
export function combine(held: Message, incoming: Message): Message {
  const base = newer(held, incoming);
  const next: Message = { ...base };
  if (next.deleted) {
    next.reactions = {};
    next.myReactions = [];
  } else if (incoming.myReactions !== undefined) {
    // A read: its reactions and mine are current.
    next.reactions = incoming.reactions ?? {};
    next.myReactions = incoming.myReactions;
  } else if (base === incoming) {
    // A newer version from an event: its counts, and my reactions as held.
    next.reactions = incoming.reactions ?? {};
    next.myReactions = held.myReactions;
  } else {
    next.reactions = held.reactions;
    next.myReactions = held.myReactions;
  }
  const heldAt = held.lastReplyAt ?? "";
  const incomingAt = incoming.lastReplyAt ?? "";
  const fresher =
    incomingAt > heldAt || (incomingAt === heldAt && incoming.myReactions !== undefined) ? incoming : held;
  next.replyCount = fresher.replyCount ?? 0;
  next.lastReplyAt = fresher.lastReplyAt;
  if (next.lastReplyAt === undefined) delete next.lastReplyAt;
  if (next.myReactions === undefined) delete next.myReactions;
  // Attachments never change, but the copy that came last has the freshest download URLs; an event's
  // copy has none, and keeps those held (a deleted message has no attachments).
  const heldUrls = new Map(held.attachments.map((a) => [a.id, a.url]));
  next.attachments = next.deleted
    ? []
    : incoming.attachments.map((a) => (a.url || !heldUrls.get(a.id) ? a : { ...a, url: heldUrls.get(a.id) }));
  const same =
    next.body === held.body &&
    next.deleted === held.deleted &&
    next.editedAt === held.editedAt &&
    next.replyCount === (held.replyCount ?? 0) &&
    next.lastReplyAt === held.lastReplyAt &&
    sameMap(next.reactions, held.reactions) &&
    sameList(next.myReactions, held.myReactions) &&
    sameList(next.mentions, held.mentions) &&
    sameFiles(next.attachments, held.attachments);
  return same ? held : next;
}

/**
 * The parent after one of its replies changed from `before` (undefined: not held until now) to `reply`:
 * a new reply newer than the parent's `lastReplyAt` adds one; a held reply that got deleted takes one back.
 */
export function countReply(parent: Message, before: Message | undefined, reply: Message): Message {
  if (!before && !reply.deleted && reply.createdAt > (parent.lastReplyAt ?? "")) {
    return { ...parent, replyCount: (parent.replyCount ?? 0) + 1, lastReplyAt: reply.createdAt };
  }
  if (before && !before.deleted && reply.deleted && (parent.replyCount ?? 0) > 0) {
    return { ...parent, replyCount: parent.replyCount - 1 };
  }
  return parent;
}

/** Messages of a timeline that are no thread replies (what the conversation view shows). */
export function topLevel(messages: Message[]): Message[] {
  return messages.filter((m) => !m.parentMessageId);
}

/** Merges stored messages in (any order, duplicates allowed) and settles matching optimistic bubbles. */
export function merge(timeline: Timeline, incoming: Message[], myId?: string): Timeline {
  if (incoming.length === 0) return timeline;
  const byId = new Map<string, Message>();
  for (const m of timeline.messages) byId.set(m.id, m);
  const batch = new Set(incoming.map((m) => m.id));
  let changed = false;
  for (const m of incoming) {
    const held = byId.get(m.id);
    const next = held ? combine(held, m) : m;
    if (next === held) continue;
    byId.set(m.id, next);
    changed = true;
    // A parent that came in the same batch was read with its replies counted.
    const parent = m.parentMessageId && !batch.has(m.parentMessageId) ? byId.get(m.parentMessageId) : undefined;
    if (parent) byId.set(parent.id, countReply(parent, held, next));
  }
  const confirmed = new Set(
    incoming.filter((m) => myId === undefined || m.senderId === myId).map((m) => m.clientMessageId),
  );
  const pending = timeline.pending.filter((p) => !confirmed.has(p.clientMessageId));
  if (!changed && pending.length === timeline.pending.length) return timeline;
  const messages = changed ? [...byId.values()].sort((a, b) => a.seq - b.seq) : timeline.messages;
  return { ...timeline, messages, pending };
}

/** Replaces one held message through `change` (for reactions); the same timeline when it is not held or unchanged. */
export function updateMessage(timeline: Timeline, id: string, change: (m: Message) => Message): Timeline {
  const i = timeline.messages.findIndex((m) => m.id === id);
  if (i < 0) return timeline;
  const next = change(timeline.messages[i]);
  if (next === timeline.messages[i]) return timeline;
  const messages = timeline.messages.slice();
  messages[i] = next;
  return { ...timeline, messages };
}

/** The newest page (newest first, as the API returns it) as the start of a timeline. */
export function loadLatest(timeline: Timeline, page: Message[], nextCursor: string | null, myId?: string): Timeline {
  const merged = merge(timeline, page, myId);
  return { ...merged, loaded: true, olderCursor: nextCursor, hasOlder: nextCursor !== null };
}

/** An older page (infinite scroll back). */
export function loadOlder(timeline: Timeline, page: Message[], nextCursor: string | null, myId?: string): Timeline {
  const merged = merge(timeline, page, myId);
  return { ...merged, olderCursor: nextCursor, hasOlder: nextCursor !== null };
}

export function newest(timeline: Timeline): Message | undefined {
  return timeline.messages[timeline.messages.length - 1];
}

/** Would merging `message` leave a hole between what is held and it? Then catch up first. */
export function gapBefore(timeline: Timeline, message: Message): boolean {
  const last = newest(timeline);
  if (!timeline.loaded || !last) return false;
  return message.seq > last.seq + 1;
}

/** Seqs missing between the oldest and newest held message (should be none after a catch-up). */
export function missingSeqs(timeline: Timeline): number[] {
  const missing: number[] = [];
  for (let i = 1; i < timeline.messages.length; i++) {
    for (let s = timeline.messages[i - 1].seq + 1; s < timeline.messages[i].seq; s++) missing.push(s);
  }
  return missing;
}

export function addPending(timeline: Timeline, pending: Pending): Timeline {
  return { ...timeline, pending: [...timeline.pending, pending] };
}

export function updatePending(timeline: Timeline, clientMessageId: string, change: Partial<Pending>): Timeline {
  if (!timeline.pending.some((p) => p.clientMessageId === clientMessageId)) return timeline;
  return {
    ...timeline,
    pending: timeline.pending.map((p) => (p.clientMessageId === clientMessageId ? { ...p, ...change } : p)),
  };
}

export function dropPending(timeline: Timeline, clientMessageId: string): Timeline {
  return { ...timeline, pending: timeline.pending.filter((p) => p.clientMessageId !== clientMessageId) };
}

/** A fresh `clientMessageId`: 1..=64 of `[A-Za-z0-9_-]`. */
export function newClientMessageId(random: () => number = Math.random): string {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijkmnpqrstuvwxyz";
  let id = Date.now().toString(36) + "-";
  for (let i = 0; i < 16; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}

/** Reconnect and retry delays: exponential with full jitter, capped; `Retry-After` wins when given. */
export function backoff(attempt: number, retryAfterSecs?: number, random: () => number = Math.random): number {
  if (retryAfterSecs !== undefined) return retryAfterSecs * 1000;
  const cap = Math.min(30_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** An open thread: its parent (as read when opened) and its replies, oldest first, page by page. */
export interface Thread {
  conversationId: string;
  parentId: string;
  parent?: Message;
  /** The replies; here `olderCursor` continues with the next (newer) page and `hasOlder` says there is one. */
  replies: Timeline;
  error?: string;
}

export const emptyThread = (conversationId: string, parentId: string): Thread => ({
  conversationId,
  parentId,
  replies: emptyTimeline(),
});

/** A page of the replies route (oldest first) added to a thread; counts nothing (the parent read does). */
export function loadReplies(thread: Thread, page: Message[], nextCursor: string | null, myId?: string): Thread {
  const replies = merge(thread.replies, page.filter((m) => m.parentMessageId === thread.parentId), myId);
  return { ...thread, replies: { ...replies, loaded: true, olderCursor: nextCursor, hasOlder: nextCursor !== null } };
}

/**
 * Live messages (events, catch-up pages) into a thread: its replies merged and counted on its parent
 * (once each, as in `merge`), and new copies of the parent combined.
 */
export function mergeThread(thread: Thread, incoming: Message[], myId?: string): Thread {
  const replies = incoming.filter((m) => m.parentMessageId === thread.parentId);
  const parents = incoming.filter((m) => m.id === thread.parentId);
  if (replies.length === 0 && parents.length === 0) return thread;
  let parent = thread.parent;
  for (const p of parents) parent = parent ? combine(parent, p) : p;
  if (parent && parents.length === 0) {
    const held = new Map(thread.replies.messages.map((m) => [m.id, m]));
    for (const reply of replies) {
      const before = held.get(reply.id);
      parent = countReply(parent, before, reply);
      held.set(reply.id, before ? combine(before, reply) : reply);
    }
  }
  const merged = merge(thread.replies, replies, myId);
  if (parent === thread.parent && merged === thread.replies) return thread;
  return { ...thread, parent, replies: merged };
}
