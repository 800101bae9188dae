import { afterEach, describe, expect, it, vi } from "vitest";

import { Api, type KeyValue } from "../src/api/client";
import { sameServerKey, subscriptionInput, uint8ArrayToUrlBase64, urlBase64ToUint8Array } from "../src/push/keys";
import {
  conversationUrl,
  NEUTRAL_BODY,
  notificationFor,
  OPEN_CONVERSATION,
  parsePush,
  SHOWN_CONVERSATION,
  targetOf,
} from "../src/push/notification";
import { listenToServiceWorker, PushState, type PushBrowser, type Registration, type Subscription } from "../src/state/push";

const CONVERSATION = "01J0000000000000000000CONV";
const MESSAGE = "01J00000000000000000000MSG";

const push = (fields: Record<string, unknown>) =>
  JSON.stringify({ type: "message", conversationId: CONVERSATION, messageId: MESSAGE, seq: 7, senderId: "U1", title: "Alice", ...fields });

describe("a push's notification", () => {
  it("shows the title and body, tagged with the conversation, with where a click leads", () => {
    expect(notificationFor(push({ body: "Lunch at noon?" }))).toEqual({
      title: "Alice",
      options: { body: "Lunch at noon?", tag: CONVERSATION, data: { conversationId: CONVERSATION, messageId: MESSAGE } },
    });
  });

  it("shows a neutral text for an encrypted message (no body), still tagged and targeted", () => {
    for (const data of [push({}), push({ body: "" }), push({ body: null })]) {
      const shown = notificationFor(data);
      expect(shown.title).toBe("Alice");
      expect(shown.options.body).toBe(NEUTRAL_BODY);
      expect(shown.options.tag).toBe(CONVERSATION);
      expect(targetOf(shown.options.data)).toEqual({ conversationId: CONVERSATION, messageId: MESSAGE });
    }
  });

  it("shows a payload not understood generically (untagged, no target) and never throws", () => {
    const malformed = [
      null,
      undefined,
      "",
      "not json {",
      "null",
      "42",
      '"text"',
      "[1,2]",
      JSON.stringify({ type: "reaction", conversationId: CONVERSATION, messageId: MESSAGE, title: "x" }),
      push({ conversationId: 12 }),
      push({ conversationId: "" }),
      push({ title: undefined }),
      push({ messageId: null }),
    ];
    for (const data of malformed) {
      expect(parsePush(data), String(data)).toBeNull();
      const shown = notificationFor(data);
      expect(shown).toEqual({ title: "Parley", options: { body: NEUTRAL_BODY } });
      expect(targetOf(shown.options)).toBeNull();
    }
    expect(targetOf(undefined)).toBeNull();
    expect(targetOf({ conversationId: 3 })).toBeNull();
  });

  it("keeps the payload's fields, and tolerates missing optional ones", () => {
    expect(parsePush(push({ body: "hi" }))).toEqual({
      type: "message",
      conversationId: CONVERSATION,
      messageId: MESSAGE,
      seq: 7,
      senderId: "U1",
      title: "Alice",
      body: "hi",
    });
    expect(parsePush(push({ seq: "x", senderId: undefined }))).toMatchObject({ seq: 0, senderId: "" });
  });

  it("leads a click to the app's route of the conversation", () => {
    expect(conversationUrl("http://127.0.0.1:8080/", CONVERSATION)).toBe(`http://127.0.0.1:8080/#/c/${CONVERSATION}`);
    expect(conversationUrl("https://parley.example/", "a/b")).toBe("https://parley.example/#/c/a%2Fb");
  });
});

describe("base64url keys", () => {
  it("decodes base64url with and without padding", () => {
    expect([...urlBase64ToUint8Array("")]).toEqual([]);
    expect([...urlBase64ToUint8Array("AQID")]).toEqual([1, 2, 3]);
    expect([...urlBase64ToUint8Array("-_8")]).toEqual([0xfb, 0xff]);
    expect([...urlBase64ToUint8Array("-_8=")]).toEqual([0xfb, 0xff]);
    expect([...urlBase64ToUint8Array("+/8")]).toEqual([0xfb, 0xff]);
    expect([...urlBase64ToUint8Array("AA")]).toEqual([0]);
    expect(() => urlBase64ToUint8Array("not base64!")).toThrow();
  });

  it("round-trips a P-256 public key (65 bytes, 87 characters without padding)", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const text = uint8ArrayToUrlBase64(raw);
    expect(text).toMatch(/^[A-Za-z0-9_-]{87}$/);
    const bytes = urlBase64ToUint8Array(text);
    expect(bytes.length).toBe(65);
    expect(bytes[0]).toBe(4); // uncompressed point
    expect([...bytes]).toEqual([...raw]);
  });

  it("tells a subscription made with another key (rotation) from one made with the current key", () => {
    const key = new Uint8Array(65).map((_, i) => (i * 7 + 4) & 0xff);
    const current = uint8ArrayToUrlBase64(key);
    expect(sameServerKey(key.buffer, current)).toBe(true);
    // A view into a larger buffer compares its own bytes only.
    const larger = new Uint8Array(70);
    larger.set(key, 3);
    expect(sameServerKey(new Uint8Array(larger.buffer, 3, 65), current)).toBe(true);
    const rotated = key.slice();
    rotated[64] ^= 1;
    expect(sameServerKey(rotated.buffer, current)).toBe(false);
    expect(sameServerKey(key.slice(0, 64).buffer, current)).toBe(false);
    expect(sameServerKey(key.buffer, "!!")).toBe(false);
    // A browser that does not say which key: nothing to compare, kept.
    expect(sameServerKey(null, current)).toBe(true);
  });

  it("makes the create body from PushSubscription.toJSON()", () => {
    const json = { endpoint: "https://push.example/e", expirationTime: null, keys: { p256dh: "P", auth: "A" } };
    expect(subscriptionInput(json)).toEqual({ type: "webpush", endpoint: "https://push.example/e", keys: { p256dh: "P", auth: "A" } });
    expect(() => subscriptionInput({ endpoint: "https://push.example/e", keys: { p256dh: "P" } })).toThrow();
    expect(() => subscriptionInput({ keys: { p256dh: "P", auth: "A" } })).toThrow();
  });
});

// ---- the switch, against a fake browser and a fake server ----

class Memory implements KeyValue {
  map = new Map<string, string>([["parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" })]]);
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

const KEY_1 = uint8ArrayToUrlBase64(new Uint8Array(65).fill(1));
const KEY_2 = uint8ArrayToUrlBase64(new Uint8Array(65).fill(2));

class FakeSubscription implements Subscription {
  unsubscribed = false;
  constructor(
    readonly endpoint: string,
    key: string,
  ) {
    this.options = { applicationServerKey: urlBase64ToUint8Array(key).buffer };
  }
  readonly options: { applicationServerKey: ArrayBuffer | null };
  toJSON(): PushSubscriptionJSON {
    return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: "P", auth: "A" } };
  }
  async unsubscribe() {
    this.unsubscribed = true;
    return true;
  }
}

function setup(permission: NotificationPermission, held: FakeSubscription | null = null, serverKey = KEY_1) {
  const log: string[] = [];
  let current = held;
  let subscriptions = 0;
  const registration: Registration = {
    pushManager: {
      getSubscription: async () => current,
      subscribe: async (options) => {
        const key = uint8ArrayToUrlBase64(options.applicationServerKey as Uint8Array);
        log.push(`subscribe ${key === KEY_1 ? "KEY_1" : key === KEY_2 ? "KEY_2" : key}`);
        current = new FakeSubscription(`https://push.example/new${++subscriptions}`, key);
        return current;
      },
    },
  };
  let registered = held !== null;
  const browser: PushBrowser = {
    permission: () => permission,
    requestPermission: () => {
      log.push("requestPermission");
      return Promise.resolve((permission = permission === "default" ? "granted" : permission));
    },
    registration: async () => (registered ? registration : undefined),
    register: async () => {
      log.push("register");
      registered = true;
      return registration;
    },
  };
  const fetcher = (async (url: string, init?: RequestInit) => {
    const path = new URL(url).pathname;
    if (path === "/auth/refresh") return Response.json({ accessToken: "a", refreshToken: "r2", expiresIn: 900 });
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    log.push(`${init?.method ?? "GET"} ${path}${body?.endpoint ? ` ${body.endpoint}` : ""}`);
    if (path === "/push/vapid-public-key") return Response.json({ publicKey: serverKey });
    if (init?.method === "POST") return Response.json({ id: `id-of-${body.endpoint.split("/").pop()}`, type: "webpush", createdAt: "2026-01-01T00:00:00Z" }, { status: 201 });
    if (init?.method === "DELETE") return new Response(null, { status: 204 });
    return Response.json({ error: { code: "not_found", message: "no route" } }, { status: 404 });
  }) as typeof fetch;
  const api = new Api("http://api", new Memory(), fetcher, (task) => task());
  const state = new PushState(api, () => {}, browser);
  return { state, log, subscription: () => current };
}

describe("the push switch", () => {
  it("says unsupported, blocked or off from the browser, and at start asks nothing without a subscription", async () => {
    const none: PushBrowser = { permission: () => null, requestPermission: vi.fn(), registration: vi.fn(), register: vi.fn() };
    const unsupported = new PushState(new Api("http://api", new Memory()), () => {}, none);
    expect(unsupported.status).toBe("unsupported");
    await unsupported.check();
    await unsupported.enable();
    expect(none.requestPermission).not.toHaveBeenCalled();
    expect(none.registration).not.toHaveBeenCalled();

    const denied = setup("denied");
    expect(denied.state.status).toBe("blocked");
    await denied.state.check();
    expect(denied.log).toEqual([]);

    const unasked = setup("default");
    await unasked.state.check();
    expect(unasked.state.status).toBe("off");
    expect(unasked.log).toEqual([]); // no prompt, no service worker, no request

    const granted = setup("granted"); // granted, never subscribed (or disabled)
    await granted.state.check();
    expect(granted.state.status).toBe("off");
    expect(granted.log).toEqual([]);
  });

  it("enables from a click: the prompt at once, the worker, the server's key, the subscription, registered", async () => {
    const { state, log } = setup("default");
    const done = state.enable();
    expect(log).toEqual(["requestPermission"]); // synchronously, in the click's task
    expect(state.busy).toBe(true);
    await done;
    expect(state.error).toBeNull();
    expect(state.status).toBe("on");
    expect(state.busy).toBe(false);
    expect(log).toEqual([
      "requestPermission",
      "register",
      "GET /push/vapid-public-key",
      "subscribe KEY_1",
      "POST /users/me/push-subscriptions https://push.example/new1",
    ]);
  });

  it("stays off, or blocked, when the prompt is dismissed or refused", async () => {
    const refused = setup("denied");
    await refused.state.enable();
    expect(refused.state.status).toBe("blocked");
    expect(refused.log).toEqual(["requestPermission"]);
  });

  it("at start, registers the held subscription again when the key is the server's", async () => {
    const held = new FakeSubscription("https://push.example/old", KEY_1);
    const { state, log } = setup("granted", held, KEY_1);
    await state.check();
    expect(state.status).toBe("on");
    expect(log).toEqual(["GET /push/vapid-public-key", "POST /users/me/push-subscriptions https://push.example/old"]);
    expect(held.unsubscribed).toBe(false);
  });

  it("at start, after a key rotation: the old subscription deleted and unsubscribed, a new one with the new key", async () => {
    const held = new FakeSubscription("https://push.example/old", KEY_1);
    const { state, log, subscription } = setup("granted", held, KEY_2);
    await state.check();
    expect(state.status).toBe("on");
    expect(held.unsubscribed).toBe(true);
    expect(subscription()?.endpoint).toBe("https://push.example/new1");
    expect(log).toEqual([
      "GET /push/vapid-public-key",
      "POST /users/me/push-subscriptions https://push.example/old", // its id, to delete it
      "DELETE /users/me/push-subscriptions/id-of-old",
      "subscribe KEY_2",
      "POST /users/me/push-subscriptions https://push.example/new1",
    ]);
  });

  it("disables: the server's copy deleted (by the id it answered), then unsubscribed here", async () => {
    const { state, log, subscription } = setup("default");
    await state.enable();
    const held = subscription() as FakeSubscription;
    log.length = 0;
    await state.disable();
    expect(log).toEqual(["DELETE /users/me/push-subscriptions/id-of-new1"]);
    expect(held.unsubscribed).toBe(true);
    expect(state.status).toBe("off");
  });

  it("shows a server error and keeps the subscription when the delete fails", async () => {
    const held = new FakeSubscription("https://push.example/old", KEY_1);
    const { state } = setup("granted", held, KEY_1);
    const api = (state as unknown as { api: Api }).api;
    vi.spyOn(api, "deletePushSubscription").mockRejectedValue(new Error("Cannot reach Parley."));
    await state.check();
    await state.disable();
    expect(state.error).toBe("Cannot reach Parley.");
    expect(state.status).toBe("on");
    expect(held.unsubscribed).toBe(false);
  });
});

describe("the service worker's messages to the app", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("open a conversation on a click, and answer which conversation is shown", async () => {
    const container = Object.assign(new EventTarget(), { startMessages: vi.fn() });
    vi.stubGlobal("navigator", { serviceWorker: container });
    const opened: string[] = [];
    const stop = listenToServiceWorker((id) => opened.push(id), () => CONVERSATION);
    expect(container.startMessages).toHaveBeenCalled();
    container.dispatchEvent(new MessageEvent("message", { data: { type: OPEN_CONVERSATION, conversationId: CONVERSATION } }));
    container.dispatchEvent(new MessageEvent("message", { data: { type: OPEN_CONVERSATION, conversationId: 5 } }));
    container.dispatchEvent(new MessageEvent("message", { data: "noise" }));
    expect(opened).toEqual([CONVERSATION]);
    const channel = new MessageChannel();
    const answer = new Promise((resolve) => (channel.port1.onmessage = (event) => resolve(event.data)));
    container.dispatchEvent(new MessageEvent("message", { data: { type: SHOWN_CONVERSATION }, ports: [channel.port2] }));
    expect(await answer).toBe(CONVERSATION);
    channel.port1.close();
    stop();
    container.dispatchEvent(new MessageEvent("message", { data: { type: OPEN_CONVERSATION, conversationId: CONVERSATION } }));
    expect(opened).toHaveLength(1);
  });
});
