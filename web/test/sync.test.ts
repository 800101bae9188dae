import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { Conversation } from "../src/api/types";
import { AppState } from "../src/state/app";
import { mergeConversations, mergeView, syncTimeline } from "../src/state/sync";
import { emptyTimeline, loadLatest, merge, missingSeqs, type Timeline } from "../src/state/timeline";
import { at, id, ME, msg, YOU } from "./fixtures";


function conv(cid: string, lastSeq: number, change: Partial<Conversation> = {}): Conversation {
  return {
    id: cid,
    type: "group",
    name: `group ${cid}`,
    createdBy: YOU,
    createdAt: at(0),
    updatedAt: at(lastSeq),
    lastMessage: lastSeq > 0 ? msg(lastSeq, { conversationId: cid }) : undefined,
    lastSeq,
    memberCount: 2,
    unreadCount: 0,
    mentionCount: 0,
    readSeq: lastSeq,
    myRole: "member",
    ...change,
  } as Conversation;
}

const seqs = (t: Timeline) => t.messages.map((m) => m.seq);
const loaded = (...held: number[]) => loadLatest(emptyTimeline(), held.map((s) => msg(s)).reverse(), null);

describe("a synced conversation's view", () => {
  it("replaces the one held, with the server's unread and mention counts", () => {
    const held = conv("C", 3);
    const view = conv("C", 7, { unreadCount: 4, mentionCount: 1, readSeq: 3, name: "renamed" });
    expect(mergeView(held, view)).toEqual(view);
    expect(mergeView(undefined, view)).toBe(view);
  });

  it("keeps what live events brought after the sync read: a newer last message, a newer read position", () => {
    const live = conv("C", 9, { unreadCount: 6, readSeq: 3 });
    const view = conv("C", 7, { unreadCount: 4, readSeq: 3 });
    const merged = mergeView(live, view);
    expect(merged).toMatchObject({ lastSeq: 9, unreadCount: 6 });
    expect(merged.lastMessage?.seq).toBe(9);
    // Read here meanwhile (markRead, or a read event from another device): nothing unread after it.
    const read = mergeView(conv("C", 7, { readSeq: 7, unreadCount: 0 }), conv("C", 7, { readSeq: 3, unreadCount: 4, mentionCount: 2 }));
    expect(read).toMatchObject({ readSeq: 7, unreadCount: 0, mentionCount: 0 });
    const partly = mergeView(conv("C", 7, { readSeq: 5, unreadCount: 2 }), conv("C", 7, { readSeq: 3, unreadCount: 4 }));
    expect(partly).toMatchObject({ readSeq: 5, unreadCount: 2 });
  });

  it("merges into the list: changed views replace theirs, new ones are added, removed ones go", () => {
    const list = [conv("A", 1), conv("B", 2), conv("D", 4)];
    const next = mergeConversations(list, [conv("B", 5, { unreadCount: 3 }), conv("N", 1, { unreadCount: 1 })], ["D", "X"]);
    expect(next.map((c) => c.id)).toEqual(["A", "B", "N"]);
    expect(next.find((c) => c.id === "B")).toMatchObject({ lastSeq: 5, unreadCount: 3 });
    expect(next[0]).toBe(list[0]);
  });
});

describe("a synced conversation's messages", () => {
  it("replace older copies by id and append new ones in seq order", () => {
    const t = loaded(1, 2, 3);
    const edited = msg(2, { body: "edited", editedAt: at(20) });
    const { timeline, complete } = syncTimeline(t, [edited, msg(4), msg(5)], ME);
    expect(complete).toBe(true);
    expect(seqs(timeline)).toEqual([1, 2, 3, 4, 5]);
    expect(timeline.messages[1].body).toBe("edited");
    expect(missingSeqs(timeline)).toEqual([]);
  });

  it("an answer repeated (the server's overlap) or already seen by events changes nothing", () => {
    let t = loaded(1, 2, 3);
    const answer = [msg(3, { reactions: { "👍": 1 } }), msg(4)];
    t = syncTimeline(t, answer, ME).timeline;
    const again = syncTimeline(t, answer, ME);
    expect(again.timeline).toBe(t);
    expect(again.complete).toBe(true);
    expect(t.messages.filter((m) => m.seq === 4)).toHaveLength(1);
  });

  it("a delete sticks against the answer's older copy", () => {
    let t = loaded(1, 2);
    t = merge(t, [msg(2, { deleted: true, body: "" })]);
    t = syncTimeline(t, [msg(2, { body: "message 2" }), msg(3)], ME).timeline;
    expect(t.messages[1]).toMatchObject({ deleted: true, body: "" });
    expect(seqs(t)).toEqual([1, 2, 3]);
  });

  it("settles my optimistic bubble with the stored message", () => {
    let t = loaded(1);
    t = { ...t, pending: [{ clientMessageId: "mine", body: "hi", createdAt: at(2), state: "retrying", attempts: 1 }] };
    t = syncTimeline(t, [msg(2, { senderId: ME, clientMessageId: "mine" })], ME).timeline;
    expect(t.pending).toEqual([]);
    expect(seqs(t)).toEqual([1, 2]);
  });

  it("stop at a hole after the newest held: the rest is the per-conversation catch-up's", () => {
    const t = loaded(1, 2, 3);
    const { timeline, complete } = syncTimeline(t, [msg(2, { body: "edited", editedAt: at(20) }), msg(4), msg(6), msg(7)], ME);
    expect(complete).toBe(false);
    expect(seqs(timeline)).toEqual([1, 2, 3, 4]);
    expect(timeline.messages[1].body).toBe("edited");
    expect(missingSeqs(timeline)).toEqual([]);
  });

  it("leave messages older than the held range to the scroll back, and unloaded timelines alone", () => {
    let t = loadLatest(emptyTimeline(), [msg(12), msg(11), msg(10)], "older");
    const { timeline, complete } = syncTimeline(t, [msg(3, { body: "edited", editedAt: at(20) }), msg(13)], ME);
    expect(complete).toBe(true);
    expect(seqs(timeline)).toEqual([10, 11, 12, 13]);
    // With the whole history held, an old message's change is applied.
    t = loaded(1, 2, 3);
    expect(syncTimeline(t, [msg(1, { body: "edited", editedAt: at(20) })], ME).timeline.messages[0].body).toBe("edited");
    const unloaded = emptyTimeline();
    expect(syncTimeline(unloaded, [msg(1)], ME)).toEqual({ timeline: unloaded, complete: true });
    // A loaded empty timeline (no messages when read) takes what came since.
    expect(seqs(syncTimeline(loaded(), [msg(1), msg(2)], ME).timeline)).toEqual([1, 2]);
  });
});

// AppState's sync against a fake HTTP API: the calls it makes and what it holds after them.
class Memory {
  map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
}

type Route = (url: URL) => { status: number; body: unknown } | undefined;

function json(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** A `SyncAnswer` as JSON (the fixtures' conversations and messages are the event shapes). */
function answer(change: Record<string, unknown>) {
  return { next: "t-next", conversations: [], removed: [], more: false, ...change };
}

describe("AppState.sync", () => {
  let calls: string[];
  let routes: Route[];

  beforeEach(() => {
    calls = [];
    routes = [];
    vi.stubGlobal("fetch", async (input: string) => {
      const url = new URL(input);
      if (url.pathname === "/auth/refresh") return json(200, { accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      calls.push(url.pathname + url.search);
      for (const route of routes) {
        const reply = route(url);
        if (reply) return json(reply.status, reply.body);
      }
      if (url.pathname.endsWith("/members") || url.pathname === "/users") return json(200, { items: [], nextCursor: null });
      return json(404, { error: { code: "not_found", message: `no route for ${url.pathname}` } });
    });
    vi.stubGlobal("history", { replaceState() {} });
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  function signedIn(): AppState {
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: ME }));
    const state = new AppState({ httpUrl: "http://api", wsUrl: "ws://ws" }, storage as unknown as Storage);
    state.me = { id: ME, username: "me", displayName: "Me" } as AppState["me"];
    state.phase = "signed-in";
    state.conversationsLoaded = true;
    state.conversations = [conv("C", 3), conv("D", 1), conv("E", 1)];
    state.timelines.set("C", loaded(1, 2, 3));
    state.syncToken = "t0";
    return state;
  }

  const syncs = () => calls.filter((c) => c.startsWith("/sync"));

  it("merges every answer while `more`, keeps `next`, and reads nothing per conversation", async () => {
    const state = signedIn();
    routes.push((url) => {
      if (url.pathname !== "/sync") return undefined;
      if (url.searchParams.get("since") === "t0")
        return {
          status: 200,
          body: answer({
            next: "t1",
            more: true,
            conversations: [{ conversation: conv("C", 5, { unreadCount: 2, readSeq: 3 }), messages: [msg(2, { body: "edited", editedAt: at(20) }), msg(4), msg(5)], limited: false }],
          }),
        };
      return {
        status: 200,
        body: answer({
          next: "t2",
          conversations: [
            {
              conversation: conv("N", 1, { unreadCount: 1, readSeq: 0, lastMessage: msg(1, { conversationId: "N", createdAt: at(4) }) }),
              messages: [msg(1, { conversationId: "N", createdAt: at(4) })],
              limited: false,
            },
          ],
          removed: ["D"],
        }),
      };
    });
    await state.sync();
    expect(syncs()).toEqual(["/sync?since=t0", "/sync?since=t1"]);
    expect(calls.filter((c) => c.includes("/messages"))).toEqual([]);
    expect(state.syncToken).toBe("t2");
    expect(seqs(state.timeline("C"))).toEqual([1, 2, 3, 4, 5]);
    expect(state.timeline("C").messages[1].body).toBe("edited");
    expect(state.conversation("C")).toMatchObject({ lastSeq: 5, unreadCount: 2 });
    expect(state.conversation("N")).toMatchObject({ unreadCount: 1 });
    expect(state.conversation("D")).toBeUndefined();
    // Newest activity first.
    expect(state.conversations.map((c) => c.id)).toEqual(["C", "N", "E"]);
    // Not loaded: read when opened.
    expect(state.timelines.has("N")).toBe(false);
  });

  it("catches up a limited conversation with after= from the last message of the answer", async () => {
    const state = signedIn();
    routes.push((url) =>
      url.pathname === "/sync"
        ? { status: 200, body: answer({ conversations: [{ conversation: conv("C", 6), messages: [msg(4), msg(5)], limited: true }] }) }
        : undefined,
    );
    routes.push((url) =>
      url.pathname === "/conversations/C/messages" ? { status: 200, body: { items: [msg(6)], nextCursor: null } } : undefined,
    );
    await state.sync();
    expect(calls.filter((c) => c.startsWith("/conversations/C/messages"))).toEqual([`/conversations/C/messages?limit=100&after=${id(5)}`]);
    expect(seqs(state.timeline("C"))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("closes a removed conversation that is open", async () => {
    const state = signedIn();
    state.openId = "C";
    routes.push((url) => (url.pathname === "/sync" ? { status: 200, body: answer({ removed: ["C"] }) } : undefined));
    await state.sync();
    expect(state.openId).toBeNull();
    expect(state.conversation("C")).toBeUndefined();
    expect(state.timelines.has("C")).toBe(false);
  });

  it("after 410 gone: the full catch-up (list, after= per loaded timeline) and a fresh token", async () => {
    const state = signedIn();
    routes.push((url) => {
      if (url.pathname === "/sync" && url.searchParams.has("since"))
        return { status: 410, body: { error: { code: "gone", message: "This sync token is more than 30 days old" } } };
      if (url.pathname === "/sync") return { status: 200, body: answer({ next: "fresh" }) };
      if (url.pathname === "/conversations") return { status: 200, body: { items: [conv("C", 4)], nextCursor: null } };
      if (url.pathname === "/conversations/C/messages") return { status: 200, body: { items: [msg(4)], nextCursor: null } };
      return undefined;
    });
    await state.sync();
    expect(syncs()).toEqual(["/sync?since=t0", "/sync"]);
    expect(calls).toContain("/conversations?limit=50");
    expect(calls).toContain(`/conversations/C/messages?limit=100&after=${id(3)}`);
    expect(state.syncToken).toBe("fresh");
    expect(seqs(state.timeline("C"))).toEqual([1, 2, 3, 4]);
    expect(state.notice).toBeNull();
  });

  it("keeps its token when a sync fails, and runs one at a time (asked meanwhile: once more after)", async () => {
    const state = signedIn();
    let fail = true;
    routes.push((url) =>
      url.pathname === "/sync"
        ? fail
          ? { status: 503, body: { error: { code: "unavailable", message: "busy" } } }
          : { status: 200, body: answer({ next: `after-${url.searchParams.get("since")}` }) }
        : undefined,
    );
    await state.sync();
    expect(state.syncToken).toBe("t0");
    expect(state.notice).toContain("busy");
    fail = false;
    await Promise.all([state.sync(), state.sync(), state.sync()]);
    expect(syncs()).toEqual(["/sync?since=t0", "/sync?since=t0", "/sync?since=after-t0"]);
    expect(state.syncToken).toBe("after-after-t0");
  });

  it("after a reconnect: a sync at once and one more a little later (changes recorded late show then)", async () => {
    vi.useFakeTimers();
    try {
      const state = signedIn();
      routes.push((url) => (url.pathname === "/sync" ? { status: 200, body: answer({ next: `after-${url.searchParams.get("since")}` }) } : undefined));
      await state.catchUp();
      expect(state.catchUps).toBe(1);
      expect(syncs()).toEqual(["/sync?since=t0"]);
      await vi.advanceTimersByTimeAsync(5000);
      expect(syncs()).toEqual(["/sync?since=t0", "/sync?since=after-t0"]);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(syncs()).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("syncs when the page is visible again after being hidden, and when the browser is online again", async () => {
    const page = Object.assign(new EventTarget(), { visibilityState: "visible" });
    const browser = new EventTarget();
    vi.stubGlobal("document", page);
    vi.stubGlobal("window", browser);
    const state = signedIn();
    routes.push((url) => (url.pathname === "/sync" ? { status: 200, body: answer({ next: "t1" }) } : undefined));
    (state as unknown as { watchWake(): void }).watchWake();
    const settled = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    };
    page.dispatchEvent(new Event("visibilitychange")); // visible, never hidden: nothing
    await settled();
    expect(syncs()).toEqual([]);
    page.visibilityState = "hidden";
    page.dispatchEvent(new Event("visibilitychange"));
    page.visibilityState = "visible";
    page.dispatchEvent(new Event("visibilitychange"));
    await settled();
    expect(syncs()).toEqual(["/sync?since=t0"]);
    browser.dispatchEvent(new Event("online"));
    await settled();
    expect(syncs()).toEqual(["/sync?since=t0", "/sync?since=t1"]);
    state.signedOut(null);
    browser.dispatchEvent(new Event("online"));
    await settled();
    expect(syncs()).toHaveLength(2);
  });

  it("without a token: the full catch-up, which takes one", async () => {
    const state = signedIn();
    state.syncToken = null;
    routes.push((url) => {
      if (url.pathname === "/sync") return { status: 200, body: answer({ next: "first" }) };
      if (url.pathname === "/conversations") return { status: 200, body: { items: [conv("C", 3)], nextCursor: null } };
      if (url.pathname === "/conversations/C/messages") return { status: 200, body: { items: [], nextCursor: null } };
      return undefined;
    });
    await state.sync();
    expect(syncs()).toEqual(["/sync"]);
    expect(state.syncToken).toBe("first");
  });
});
