import { describe, expect, it } from "vitest";

import type { Message } from "../src/api/types";
import {
  addPending,
  backoff,
  emptyTimeline,
  gapBefore,
  loadLatest,
  loadOlder,
  merge,
  missingSeqs,
  newClientMessageId,
  newest,
  updatePending,
} from "../src/state/timeline";

const ME = "01HZZZZZZZZZZZZZZZZZZZZZME";
const YOU = "01HZZZZZZZZZZZZZZZZZZZZYOU";

function msg(seq: number, change: Partial<Message> = {}): Message {
  return {
    id: `M${String(seq).padStart(25, "0")}`,
    conversationId: "C",
    seq,
    senderId: YOU,
    clientMessageId: `c${seq}`,
    body: `message ${seq}`,
    encrypted: false,
    createdAt: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
    deleted: false,
    replyCount: 0,
    mentions: [],
    attachments: [],
    reactions: {},
    ...change,
  };
}

const seqs = (t: { messages: Message[] }) => t.messages.map((m) => m.seq);

describe("merging messages", () => {
  it("dedupes by id and orders by seq whatever the arrival order", () => {
    let t = loadLatest(emptyTimeline(), [msg(3), msg(2), msg(1)], null);
    t = merge(t, [msg(5), msg(4), msg(5), msg(3)]);
    t = merge(t, [msg(4)]);
    expect(seqs(t)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(t.messages.map((m) => m.id)).size).toBe(5);
  });

  it("returns the same timeline when nothing changed (no re-render)", () => {
    const t = loadLatest(emptyTimeline(), [msg(1)], null);
    expect(merge(t, [msg(1)])).toBe(t);
  });

  it("keeps edits and deletes against late copies of older versions", () => {
    let t = loadLatest(emptyTimeline(), [msg(1)], null);
    const edited = msg(1, { body: "edited", editedAt: "2026-01-01T00:00:01.000Z" });
    t = merge(t, [edited]);
    t = merge(t, [msg(1)]); // a redelivered message.new
    expect(t.messages[0].body).toBe("edited");
    const deleted = msg(1, { body: "", deleted: true });
    t = merge(t, [deleted]);
    t = merge(t, [edited]);
    expect(t.messages[0].deleted).toBe(true);
    expect(t.messages[0].body).toBe("");
  });
});

describe("optimistic bubbles", () => {
  const pending = (clientMessageId: string) => ({
    clientMessageId,
    body: "hi",
    createdAt: new Date().toISOString(),
    state: "sending" as const,
    attempts: 0,
  });

  it("are replaced by the stored message with the same clientMessageId", () => {
    let t = loadLatest(emptyTimeline(), [msg(1)], null);
    t = addPending(t, pending("abc"));
    t = addPending(t, pending("def"));
    expect(t.pending).toHaveLength(2);
    t = merge(t, [msg(2, { senderId: ME, clientMessageId: "abc" })], ME);
    expect(t.pending.map((p) => p.clientMessageId)).toEqual(["def"]);
    expect(seqs(t)).toEqual([1, 2]);
    // The reply and the event both arrive: still one message, no bubble.
    t = merge(t, [msg(2, { senderId: ME, clientMessageId: "abc" })], ME);
    expect(seqs(t)).toEqual([1, 2]);
  });

  it("are not settled by someone else's message with the same clientMessageId", () => {
    let t = addPending(loadLatest(emptyTimeline(), [], null), pending("same"));
    t = merge(t, [msg(1, { senderId: YOU, clientMessageId: "same" })], ME);
    expect(t.pending).toHaveLength(1);
  });

  it("track retries and failures", () => {
    let t = addPending(emptyTimeline(), pending("x"));
    t = updatePending(t, "x", { state: "retrying", attempts: 1, error: "busy" });
    expect(t.pending[0]).toMatchObject({ state: "retrying", attempts: 1 });
    expect(updatePending(t, "nope", { state: "failed" })).toBe(t);
  });

  it("get ids the API accepts", () => {
    for (let i = 0; i < 50; i++) expect(newClientMessageId()).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(newClientMessageId()).not.toBe(newClientMessageId());
  });
});

describe("gaps and catch-up", () => {
  it("detects a message past the newest held + 1", () => {
    const t = loadLatest(emptyTimeline(), [msg(2), msg(1)], null);
    expect(gapBefore(t, msg(3))).toBe(false);
    expect(gapBefore(t, msg(5))).toBe(true);
    expect(gapBefore(t, msg(2))).toBe(false);
    expect(gapBefore(emptyTimeline(), msg(9))).toBe(false);
  });

  it("a catch-up page merged with events seen meanwhile leaves nothing missing or doubled", () => {
    let t = loadLatest(emptyTimeline(), [msg(2), msg(1)], null);
    // Disconnected; on reconnect an event for 6 arrives before the catch-up of 3..6 returns.
    t = merge(t, [msg(6)]);
    expect(missingSeqs(t)).toEqual([3, 4, 5]);
    t = merge(t, [msg(3), msg(4), msg(5), msg(6)]);
    expect(missingSeqs(t)).toEqual([]);
    expect(seqs(t)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(newest(t)?.seq).toBe(6);
  });

  it("older pages prepend and track the cursor", () => {
    let t = loadLatest(emptyTimeline(), [msg(10), msg(9)], "cursor-1");
    expect(t.hasOlder).toBe(true);
    t = loadOlder(t, [msg(8), msg(7)], "cursor-2");
    expect(t.olderCursor).toBe("cursor-2");
    t = loadOlder(t, [msg(6)], null);
    expect(t.hasOlder).toBe(false);
    expect(seqs(t)).toEqual([6, 7, 8, 9, 10]);
  });
});

describe("backoff", () => {
  it("grows, is capped, and honours Retry-After", () => {
    expect(backoff(0, undefined, () => 1)).toBe(500);
    expect(backoff(0, undefined, () => 0)).toBe(250);
    expect(backoff(3, undefined, () => 1)).toBe(4000);
    expect(backoff(20, undefined, () => 1)).toBe(30_000);
    expect(backoff(2, 7)).toBe(7000);
  });
});
