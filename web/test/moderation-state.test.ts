// AppState's invitations, mutes, slow mode and pins against a fake HTTP API: the events it takes, the
// calls it makes, and what it holds after them.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { Conversation, Invitation } from "../src/api/types";
import { AppState } from "../src/state/app";
import { emptyTimeline, loadLatest } from "../src/state/timeline";
import { at, id, ME, msg, YOU } from "./fixtures";


function conv(cid: string, change: Partial<Conversation> = {}): Conversation {
  return {
    id: cid,
    type: "group",
    name: `group ${cid}`,
    createdBy: YOU,
    createdAt: at(0),
    updatedAt: at(1),
    lastMessage: msg(1, { conversationId: cid }),
    lastSeq: 1,
    memberCount: 2,
    unreadCount: 0,
    mentionCount: 0,
    readSeq: 1,
    myRole: "member",
    slowModeSeconds: 0,
    ...change,
  } as Conversation;
}

function invitation(iid: string, cid: string): Invitation {
  const { id, type, name, createdBy, createdAt, updatedAt, lastSeq, memberCount, slowModeSeconds } = conv(cid);
  return {
    id: iid,
    conversation: { id, type, name, createdBy, createdAt, updatedAt, lastSeq, memberCount, slowModeSeconds },
    invitedBy: YOU,
    createdAt: at(5),
  };
}

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

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
type Route = (method: string, url: URL, body: Record<string, unknown>) => Reply | undefined;

describe("AppState: invitations, mutes, slow mode, pins", () => {
  let calls: string[];
  let routes: Route[];

  beforeEach(() => {
    calls = [];
    routes = [];
    vi.stubGlobal("fetch", async (input: string, init?: RequestInit) => {
      const url = new URL(input);
      const method = init?.method ?? "GET";
      if (url.pathname === "/auth/refresh") return Response.json({ accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      calls.push(`${method} ${url.pathname}`);
      for (const route of routes) {
        const reply = route(method, url, init?.body ? (JSON.parse(String(init.body)) as Record<string, unknown>) : {});
        if (reply) {
          return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
            status: reply.status,
            headers: { "content-type": "application/json", ...reply.headers },
          });
        }
      }
      if (url.pathname.endsWith("/members") || url.pathname === "/users") return Response.json({ items: [], nextCursor: null });
      if (url.pathname.endsWith("/pins")) return Response.json({ items: [] });
      if (url.pathname.endsWith("/messages") && method === "GET") return Response.json({ items: [], nextCursor: null });
      return Response.json({ error: { code: "not_found", message: `no route for ${method} ${url.pathname}` } }, { status: 404 });
    });
    vi.stubGlobal("history", { replaceState() {} });
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  function signedIn(...conversations: Conversation[]): AppState {
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: ME }));
    const state = new AppState({ httpUrl: "http://api", wsUrl: "ws://ws" }, storage as unknown as Storage);
    state.me = { id: ME, username: "me", displayName: "Me" } as AppState["me"];
    state.phase = "signed-in";
    state.conversationsLoaded = true;
    state.conversations = conversations;
    for (const c of conversations) state.timelines.set(c.id, loadLatest(emptyTimeline(), [msg(1, { conversationId: c.id })], null));
    return state;
  }

  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  };

  it("invitation.new adds to the list once; accepting joins and opens the group", async () => {
    const state = signedIn();
    state.handle({ type: "invitation.new", invitation: invitation("I1", "G") });
    state.handle({ type: "invitation.new", invitation: invitation("I1", "G") });
    expect(state.invitations.map((i) => i.id)).toEqual(["I1"]);
    routes.push((method, url) =>
      method === "POST" && url.pathname === "/invitations/I1/accept" ? { status: 200, body: { conversation: conv("G") } } : undefined,
    );
    await state.acceptInvitation("I1");
    expect(state.invitations).toEqual([]);
    expect(state.conversation("G")).toBeDefined();
    expect(state.openId).toBe("G");
    expect(calls).toContain("POST /invitations/I1/accept");
  });

  it("declining takes the invitation off the list, also when it was already gone (404)", async () => {
    const state = signedIn();
    state.handle({ type: "invitation.new", invitation: invitation("I1", "G") });
    state.handle({ type: "invitation.new", invitation: invitation("I2", "H") });
    routes.push((method, url) => (method === "DELETE" && url.pathname === "/invitations/I1" ? { status: 204 } : undefined));
    await state.declineInvitation("I1");
    await state.declineInvitation("I2"); // the fake answers 404
    expect(state.invitations).toEqual([]);
    // Added to the group elsewhere: its invitations are done with.
    state.handle({ type: "invitation.new", invitation: invitation("I3", "K") });
    state.handle({ type: "member.added", conversationId: "K", userIds: [ME] });
    expect(state.invitations).toEqual([]);
  });

  it("joins by an invite link and opens the group; a refused code keeps the prompt, with the API's message", async () => {
    const state = signedIn();
    state.route("#/join/Ab3dEf6hIj9k");
    expect(state.joinCode).toBe("Ab3dEf6hIj9k");
    routes.push((method, url) =>
      method === "POST" && url.pathname === "/invites/Gone0000Code/join"
        ? { status: 410, body: { error: { code: "gone", message: "This invite link has expired." } } }
        : method === "POST" && url.pathname === "/invites/Ab3dEf6hIj9k/join"
          ? { status: 200, body: { conversation: conv("G") } }
          : undefined,
    );
    await expect(state.joinByInvite("Gone0000Code")).rejects.toMatchObject({ status: 410, message: "This invite link has expired." });
    expect(state.joinCode).toBe("Ab3dEf6hIj9k");
    await state.joinByInvite("Ab3dEf6hIj9k");
    expect(state.joinCode).toBeNull();
    expect(state.openId).toBe("G");
  });

  it("member.muted for me holds my sends back until member.unmuted", () => {
    const state = signedIn(conv("C"));
    const until = new Date(Date.now() + 3_600_000).toISOString();
    state.handle({ type: "member.muted", conversationId: "C", userId: ME, until });
    expect(state.mutedUntil("C", ME)?.toISOString()).toBe(until);
    expect(state.send("C", "hello")).toBe(false);
    state.handle({ type: "member.unmuted", conversationId: "C", userId: ME });
    expect(state.mutedUntil("C", ME)).toBeNull();
    // A mute already over holds nothing back.
    state.handle({ type: "member.muted", conversationId: "C", userId: ME, until: new Date(Date.now() - 1000).toISOString() });
    expect(state.mutedUntil("C", ME)).toBeNull();
  });

  it("a 403 saying I am muted until a time shows as my mute", async () => {
    const state = signedIn(conv("C"));
    routes.push((method, url) =>
      method === "POST" && url.pathname === "/conversations/C/messages"
        ? { status: 403, body: { error: { code: "forbidden", message: "You are muted in this conversation until 2999-01-01T00:00:00.000Z." } } }
        : undefined,
    );
    expect(state.send("C", "hello")).toBe(true);
    await settle();
    expect(state.mutedUntil("C", ME)?.toISOString()).toBe("2999-01-01T00:00:00.000Z");
    expect(state.timeline("C").pending[0]).toMatchObject({ state: "failed" });
  });

  it("slow mode: a plain member waits the interval after a send; a 429 waits its Retry-After, then the send goes", async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const state = signedIn(conv("C", { slowModeSeconds: 30 }), conv("D", { slowModeSeconds: 30, myRole: "admin" }));
    let refuse = true;
    routes.push((method, url, body) => {
      if (method !== "POST" || !url.pathname.endsWith("/messages")) return undefined;
      const cid = url.pathname.split("/")[2];
      if (refuse && cid === "C") {
        return {
          status: 429,
          body: { error: { code: "rate_limited", message: "This conversation is in slow mode. Retry in 7 s." } },
          headers: { "retry-after": "7" },
        };
      }
      return { status: 201, body: msg(2, { conversationId: cid, senderId: ME, clientMessageId: String(body.clientMessageId) }) };
    });
    expect(state.send("C", "first")).toBe(true);
    expect(state.sendableAt("C")).toBe(1_000_000 + 30_000);
    expect(state.send("C", "second")).toBe(false);
    await vi.advanceTimersByTimeAsync(0);
    // The server's word: 7 s more.
    expect(state.sendableAt("C")).toBe(1_000_000 + 7_000);
    refuse = false;
    await vi.advanceTimersByTimeAsync(7_000);
    expect(state.timeline("C").pending).toEqual([]);
    expect(state.timeline("C").messages.map((m) => m.seq)).toEqual([1, 2]);
    // Sent at 1 007 000: the next one after the interval from then.
    expect(state.sendableAt("C")).toBe(1_007_000 + 30_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(state.sendableAt("C")).toBeNull();
    // An admin is exempt.
    expect(state.send("D", "from an admin")).toBe(true);
    expect(state.sendableAt("D")).toBeNull();
  });

  it("pins: read when opened, read again on message.pinned, dropped on message.unpinned or delete", async () => {
    const state = signedIn(conv("C"));
    let pinned = [msg(1)];
    routes.push((method, url) => (method === "GET" && url.pathname === "/conversations/C/pins" ? { status: 200, body: { items: pinned } } : undefined));
    await state.loadPins("C");
    expect(state.isPinned("C", id(1))).toBe(true);
    pinned = [msg(2), msg(1)];
    state.handle({ type: "message.pinned", conversationId: "C", messageId: id(2) });
    await settle();
    expect(state.pins.get("C")?.map((m) => m.seq)).toEqual([2, 1]);
    state.handle({ type: "message.unpinned", conversationId: "C", messageId: id(2) });
    expect(state.pins.get("C")?.map((m) => m.seq)).toEqual([1]);
    state.handle({ type: "message.deleted", message: msg(1, { deleted: true, body: "" }) });
    expect(state.isPinned("C", id(1))).toBe(false);
    // A conversation whose pins are not held: nothing read on an event.
    const before = calls.length;
    state.handle({ type: "message.pinned", conversationId: "Z", messageId: id(9) });
    await settle();
    expect(calls.slice(before).filter((c) => c.includes("/pins"))).toEqual([]);
  });

  it("member.banned of me forgets the conversation", () => {
    const state = signedIn(conv("C"));
    state.handle({ type: "member.banned", conversationId: "C", userId: ME });
    expect(state.conversation("C")).toBeUndefined();
    expect(state.timelines.has("C")).toBe(false);
  });
});

describe("AppState: a catch-up and my mutes", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("forgets my own mute (an unmute may have been missed) and keeps others'", async () => {
    vi.stubGlobal("fetch", async (input: string) => {
      const url = new URL(input);
      if (url.pathname === "/auth/refresh") return Response.json({ accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      if (url.pathname === "/sync") return Response.json({ next: "t1", conversations: [], removed: [], more: false });
      return Response.json({ items: [] });
    });
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: ME }));
    const state = new AppState({ httpUrl: "http://api", wsUrl: "ws://ws" }, storage as unknown as Storage);
    state.me = { id: ME, username: "me", displayName: "Me" } as AppState["me"];
    state.phase = "signed-in";
    state.syncToken = "t0";
    const until = new Date(Date.now() + 60_000).toISOString();
    state.handle({ type: "member.muted", conversationId: "C", userId: ME, until });
    state.handle({ type: "member.muted", conversationId: "C", userId: YOU, until });
    await state.catchUp();
    expect(state.mutedUntil("C", ME)).toBeNull();
    expect(state.mutedUntil("C", YOU)?.toISOString()).toBe(until);
    state.signedOut(null);
  });
});
