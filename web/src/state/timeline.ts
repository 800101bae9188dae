// One conversation's messages as the client holds them: pure functions, so the rules are unit-tested.
// - Events are at-least-once and may come out of order: dedupe by `id`, order by `seq`.
// - An edit or delete must not be undone by a late copy of an older version: `deleted` sticks, and a
//   later `editedAt` wins.
// - Optimistic bubbles are keyed by `clientMessageId` and replaced by the stored message when it
//   arrives (from the send's reply, an event, or a catch-up page, whichever comes first).
// - `seq` has no gaps: a message whose `seq` is past the newest held + 1 means something was missed,
//   and the client catches up with `after=<newest held id>`.

import type { Message } from "../api/types";

export interface Pending {
  clientMessageId: string;
  body: string;
  createdAt: string;
  state: "sending" | "retrying" | "failed";
  error?: string;
  attempts: number;
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

/** Merges stored messages in (any order, duplicates allowed) and settles matching optimistic bubbles. */
export function merge(timeline: Timeline, incoming: Message[], myId?: string): Timeline {
  if (incoming.length === 0) return timeline;
  const byId = new Map<string, Message>();
  for (const m of timeline.messages) byId.set(m.id, m);
  let changed = false;
  for (const m of incoming) {
    const held = byId.get(m.id);
    const next = held ? newer(held, m) : m;
    if (next !== held) {
      byId.set(m.id, next);
      changed = true;
    }
  }
  const confirmed = new Set(
    incoming.filter((m) => myId === undefined || m.senderId === myId).map((m) => m.clientMessageId),
  );
  const pending = timeline.pending.filter((p) => !confirmed.has(p.clientMessageId));
  if (!changed && pending.length === timeline.pending.length) return timeline;
  const messages = changed ? [...byId.values()].sort((a, b) => a.seq - b.seq) : timeline.messages;
  return { ...timeline, messages, pending };
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
