import { describe, expect, it } from "vitest";

import { Api, ApiError, describeError, type KeyValue } from "../src/api/client";
import { flatten } from "../src/state/realtime";

class Memory implements KeyValue {
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

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

describe("refresh-token rotation", () => {
  it("runs one refresh at a time and stores the rotated token", async () => {
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    const presented: string[] = [];
    let n = 1;
    const fetcher = (async (url: string, init?: RequestInit) => {
      if (String(url).endsWith("/auth/refresh")) {
        const { refreshToken } = JSON.parse(String(init?.body));
        presented.push(refreshToken);
        await new Promise((r) => setTimeout(r, 10));
        n += 1;
        return json(200, { accessToken: `a${n}`, refreshToken: `r${n}`, expiresIn: 900 });
      }
      return json(200, { id: "U", auth: (init?.headers as Record<string, string>).authorization });
    }) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    const replies = await Promise.all([api.me(), api.me(), api.me()]);
    expect(presented).toEqual(["r1"]);
    expect(replies.map((r) => (r as unknown as { auth: string }).auth)).toEqual(["Bearer a2", "Bearer a2", "Bearer a2"]);
    expect(api.saved()).toEqual({ refreshToken: "r2", userId: "U" });
    // The next refresh presents the rotated token, never the old one.
    await api.refresh();
    expect(presented).toEqual(["r1", "r2"]);
  });

  it("retries a refused access token once after a refresh, and signs out when the refresh is refused", async () => {
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    let signedOut = false;
    const fetcher = (async (url: string) =>
      String(url).endsWith("/auth/refresh")
        ? json(401, { error: { code: "unauthorized", message: "Session revoked." } })
        : json(401, { message: "Unauthorized" })) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    api.onSignedOut = () => (signedOut = true);
    await expect(api.me()).rejects.toMatchObject({ status: 401 });
    expect(signedOut).toBe(true);
    expect(api.saved()).toBeNull();
  });
});

describe("errors", () => {
  it("carry code, message and Retry-After", async () => {
    const fetcher = (async () =>
      json(429, { error: { code: "rate_limited", message: "Too many requests" } }, { "retry-after": "42" })) as typeof fetch;
    const api = new Api("http://api", new Memory(), fetcher, (task) => task());
    const error = (await api.login("alice", "password1").catch((e) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe("rate_limited");
    expect(error.retryAfter).toBe(42);
    expect(error.transient).toBe(true);
    expect(describeError(error)).toBe("Too many attempts. Try again in 42 s.");
    expect(describeError(new ApiError(503, "unavailable", "x", 3))).toContain("3 s");
    expect(describeError(new ApiError(401, "unauthorized", "Wrong username or password."))).toBe(
      "Wrong username or password.",
    );
    expect(new ApiError(400, "validation_failed", "x").transient).toBe(false);
  });

  it("a network failure is status 0 and transient", async () => {
    const fetcher = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    const api = new Api("http://api", new Memory(), fetcher, (task) => task());
    const error = (await api.login("alice", "password1").catch((e) => e)) as ApiError;
    expect(error.status).toBe(0);
    expect(error.transient).toBe(true);
  });
});

describe("WebSocket frames", () => {
  it("batch frames flatten to their events in order", () => {
    const events = flatten({
      type: "batch",
      events: [
        { type: "typing", conversationId: "C", userId: "A" },
        { type: "batch", events: [{ type: "conversation.deleted", conversationId: "D" }] },
        { type: "pong", at: "now" },
      ],
    });
    expect(events.map((e) => e.type)).toEqual(["typing", "conversation.deleted", "pong"]);
  });
});

describe("thread, reaction and search calls", () => {
  it("send replies and mentions, percent-encode reactions, and scope searches", async () => {
    const seen: { method: string; url: string; body?: unknown }[] = [];
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    const fetcher = (async (url: string, init?: RequestInit) => {
      if (String(url).endsWith("/auth/refresh")) return json(200, { accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      seen.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined });
      return init?.method === "PUT" || init?.method === "DELETE" ? new Response(null, { status: 204 }) : json(200, { items: [], nextCursor: null });
    }) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    await api.send("C", "c1", "hi @bob", { parentMessageId: "P", mentions: ["B"] });
    await api.send("C", "c2", "plain", { mentions: [] });
    await api.react("C", "M", "👍", true);
    await api.react("C", "M", "+1", false);
    await api.replies("C", "P", "cur/sor");
    await api.searchMessages("caf bar", "C", "x");
    expect(seen[0].body).toEqual({ clientMessageId: "c1", body: "hi @bob", parentMessageId: "P", mentions: ["B"] });
    expect(seen[1].body).toEqual({ clientMessageId: "c2", body: "plain" });
    expect(seen[2]).toMatchObject({ method: "PUT", url: "http://api/conversations/C/messages/M/reactions/%F0%9F%91%8D" });
    expect(seen[3]).toMatchObject({ method: "DELETE", url: "http://api/conversations/C/messages/M/reactions/%2B1" });
    expect(seen[4].url).toBe("http://api/conversations/C/messages/P/replies?limit=50&cursor=cur%2Fsor");
    expect(seen[5].url).toBe("http://api/search/messages?q=caf%20bar&limit=20&conversationId=C&cursor=x");
  });

  it("reserve uploads, read attachments, and send attachmentIds (an empty body allowed)", async () => {
    const seen: { method: string; url: string; body?: unknown; auth?: string }[] = [];
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    const fetcher = (async (url: string, init?: RequestInit) => {
      if (String(url).endsWith("/auth/refresh")) return json(200, { accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      const headers = (init?.headers ?? {}) as Record<string, string>;
      seen.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined, auth: headers.authorization });
      return json(200, {});
    }) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    await api.reserveAttachment("C", "plan.png", "image/png", 70);
    await api.attachment("C", "A1");
    await api.send("C", "c1", "", { attachmentIds: ["A1", "A2"] });
    await api.send("C", "c2", "no files", { attachmentIds: [] });
    expect(seen[0]).toMatchObject({ method: "POST", url: "http://api/conversations/C/attachments", body: { fileName: "plan.png", contentType: "image/png", size: 70 }, auth: "Bearer a" });
    expect(seen[1]).toMatchObject({ method: "GET", url: "http://api/conversations/C/attachments/A1" });
    expect(seen[2].body).toEqual({ clientMessageId: "c1", body: "", attachmentIds: ["A1", "A2"] });
    expect(seen[3].body).toEqual({ clientMessageId: "c2", body: "no files" });
    // The token goes in a header, never in a URL.
    expect(seen.every((s) => !s.url.includes("token"))).toBe(true);
  });
});

describe("sync calls", () => {
  it("take a token without since, and pass one back percent-encoded", async () => {
    const seen: string[] = [];
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    const fetcher = (async (url: string, init?: RequestInit) => {
      if (String(url).endsWith("/auth/refresh")) return json(200, { accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      seen.push(`${init?.method} ${url}`);
      return json(200, { next: "n", conversations: [], removed: [], more: false });
    }) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    expect((await api.sync()).next).toBe("n");
    await api.sync(null);
    await api.sync("v1+a/b=");
    expect(seen).toEqual(["GET http://api/sync", "GET http://api/sync", "GET http://api/sync?since=v1%2Ba%2Fb%3D"]);
    // A token past 30 days: 410 with the code `gone`.
    const goneFetcher = (async (url: string) =>
      String(url).endsWith("/auth/refresh")
        ? json(200, { accessToken: "a", refreshToken: "r3", expiresIn: 900 })
        : json(410, { error: { code: "gone", message: "old" } })) as typeof fetch;
    const gone = new Api("http://api", storage, goneFetcher, (task) => task());
    await expect(gone.sync("old")).rejects.toMatchObject({ status: 410, code: "gone" });
  });
});

describe("moderation, invitation and invite link calls", () => {
  it("send what the contract takes: optional bodies left out, reports with their fields, invite codes encoded", async () => {
    const seen: { method: string; url: string; body?: unknown; type?: string }[] = [];
    const storage = new Memory();
    storage.setItem("parley.session", JSON.stringify({ refreshToken: "r1", userId: "U" }));
    const fetcher = (async (url: string, init?: RequestInit) => {
      if (String(url).endsWith("/auth/refresh")) return json(200, { accessToken: "a", refreshToken: "r2", expiresIn: 900 });
      const headers = (init?.headers ?? {}) as Record<string, string>;
      seen.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined, type: headers["content-type"] });
      return init?.method === "PUT" || init?.method === "DELETE" ? new Response(null, { status: 204 }) : json(200, { items: [] });
    }) as typeof fetch;
    const api = new Api("http://api", storage, fetcher, (task) => task());
    await api.ban("C", "B");
    await api.ban("C", "B", "spamming");
    await api.mute("C", "B", 3600);
    await api.unmute("C", "B");
    await api.createInvite("C", { expiresInSeconds: 3600 });
    await api.joinByInvite("Ab3dEf6hIj9k");
    await api.report({ conversationId: "C", messageId: "M", reason: "spam", note: "ads" });
    await api.reports("C", "open");
    await api.closeReport("C", "R", "dismissed");
    await api.setSlowMode("C", 30);
    await api.updateMe({ whoCanAddMe: "nobody" });
    await api.pin("C", "M", true);
    await api.pin("C", "M", false);
    expect(seen[0]).toEqual({ method: "PUT", url: "http://api/conversations/C/bans/B", body: undefined, type: undefined });
    expect(seen[1]).toMatchObject({ method: "PUT", body: { reason: "spamming" }, type: "application/json" });
    expect(seen[2]).toMatchObject({ method: "PUT", url: "http://api/conversations/C/mutes/B", body: { durationSeconds: 3600 } });
    expect(seen[3]).toMatchObject({ method: "DELETE", url: "http://api/conversations/C/mutes/B" });
    expect(seen[4]).toMatchObject({ method: "POST", url: "http://api/conversations/C/invites", body: { expiresInSeconds: 3600 } });
    expect(seen[5]).toMatchObject({ method: "POST", url: "http://api/invites/Ab3dEf6hIj9k/join" });
    expect(seen[6]).toMatchObject({ method: "POST", url: "http://api/reports", body: { conversationId: "C", messageId: "M", reason: "spam", note: "ads" } });
    expect(seen[7]).toMatchObject({ method: "GET", url: "http://api/conversations/C/reports?status=open" });
    expect(seen[8]).toMatchObject({ method: "PATCH", url: "http://api/conversations/C/reports/R", body: { status: "dismissed" } });
    expect(seen[9]).toMatchObject({ method: "PATCH", url: "http://api/conversations/C", body: { slowModeSeconds: 30 } });
    expect(seen[10]).toMatchObject({ method: "PATCH", url: "http://api/users/me", body: { whoCanAddMe: "nobody" } });
    expect(seen[11]).toMatchObject({ method: "PUT", url: "http://api/conversations/C/pins/M" });
    expect(seen[12]).toMatchObject({ method: "DELETE", url: "http://api/conversations/C/pins/M" });
  });
});
