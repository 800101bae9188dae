// Typed calls to the HTTP API. The access token lives in memory only; the refresh token (and the user
// id) is what survives a reload. Refresh-token rotation: one refresh at a time (per tab, and across tabs
// through the Web Locks API where the browser has it), always with the newest stored token, because
// presenting a rotated token revokes the whole session.

import type {
  AuthReply,
  Member,
  NotificationLevel,
  OperationId,
  Page,
  RefreshReply,
  Reply,
  ReportReason,
  ReportStatus,
  RequestBody,
  Role,
  User,
  UserStatus,
  WebPushSubscriptionInput,
  WhoCanAddMe,
} from "./types";

export interface SendExtra {
  parentMessageId?: string;
  mentions?: string[];
  /** Uploads (done) to attach, at most 10. */
  attachmentIds?: string[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from `Retry-After` (429 and 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** Worth trying again with the same request (network, 429, 5xx)? */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** What a person reads for an error: with the wait for 429 and 503. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 429) {
      return `Too many attempts. Try again in ${error.retryAfter ?? 60} s.`;
    }
    if (error.status === 503) {
      return `Parley is busy right now. Try again in ${error.retryAfter ?? 5} s.`;
    }
    if (error.status === 0) return "Cannot reach Parley. Check your connection.";
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface SavedSession {
  refreshToken: string;
  userId: string;
}

export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const SESSION_KEY = "parley.session";

type Fetch = typeof fetch;
type Lock = <T>(task: () => Promise<T>) => Promise<T>;

function browserLock(): Lock {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return (task) => task();
  return (task) => locks.request("parley-refresh", task) as Promise<never>;
}

export class Api {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private refreshing: Promise<string> | null = null;
  /** Called when the session is over (refresh refused): the app shows the sign-in form. */
  onSignedOut: () => void = () => {};

  constructor(
    readonly baseUrl: string,
    private readonly storage: KeyValue,
    private readonly fetcher: Fetch = (...args) => fetch(...args),
    private readonly lock: Lock = browserLock(),
    private readonly now: () => number = () => Date.now(),
  ) {}

  saved(): SavedSession | null {
    try {
      const raw = this.storage.getItem(SESSION_KEY);
      return raw ? (JSON.parse(raw) as SavedSession) : null;
    } catch {
      return null;
    }
  }

  private save(session: SavedSession | null) {
    if (session) this.storage.setItem(SESSION_KEY, JSON.stringify(session));
    else this.storage.removeItem(SESSION_KEY);
  }

  private adopt(reply: AuthReply | RefreshReply, userId: string) {
    this.accessToken = reply.accessToken;
    this.expiresAt = this.now() + reply.expiresIn * 1000;
    this.save({ refreshToken: reply.refreshToken, userId });
  }

  forget() {
    this.accessToken = null;
    this.expiresAt = 0;
    this.save(null);
  }

  /** A valid access token, refreshed first when it expires within 30 s. */
  async token(): Promise<string> {
    if (this.accessToken && this.expiresAt - this.now() > 30_000) return this.accessToken;
    return this.refresh();
  }

  /** One refresh at a time: concurrent callers share the one in flight. */
  refresh(): Promise<string> {
    if (!this.refreshing) {
      this.refreshing = this.lock(() => this.rotate()).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async rotate(): Promise<string> {
    const saved = this.saved();
    if (!saved) throw new ApiError(401, "unauthorized", "Signed out.");
    let reply: RefreshReply;
    try {
      reply = await this.call<"auth-refresh">("POST", "/auth/refresh", { refreshToken: saved.refreshToken }, false);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.forget();
        this.onSignedOut();
      }
      throw error;
    }
    this.adopt(reply, saved.userId);
    return reply.accessToken;
  }

  /**
   * One request of the operation `Op` (its `operationId` in openapi.yaml), which types the body it
   * takes and the answer it gets; `method` and `path` must be that operation's.
   */
  private async call<Op extends OperationId>(
    method: string,
    path: string,
    body?: RequestBody<Op>,
    auth = true,
    retried = false,
  ): Promise<Reply<Op>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${await this.token()}`;
    let response: Response;
    try {
      response = await this.fetcher(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "Cannot reach Parley.");
    }
    if (response.status === 401 && auth && !retried) {
      // The access token was refused (expired, or the session was revoked): one refresh, one retry.
      this.accessToken = null;
      await this.refresh();
      return this.call<Op>(method, path, body, auth, true);
    }
    if (response.status === 204) return undefined as Reply<Op>;
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string }; message?: string } | null) ?? {};
      const retryAfter = Number(response.headers.get("retry-after") ?? "");
      throw new ApiError(
        response.status,
        error.error?.code ?? "http_" + response.status,
        error.error?.message ?? error.message ?? `HTTP ${response.status}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      );
    }
    return json as Reply<Op>;
  }

  // Auth
  async register(username: string, password: string, displayName?: string): Promise<User> {
    const reply = await this.call<"auth-register">("POST", "/auth/register", { username, password, displayName }, false);
    this.adopt(reply, reply.user.id);
    return reply.user;
  }
  async login(username: string, password: string): Promise<User> {
    const reply = await this.call<"auth-login">("POST", "/auth/login", { username, password }, false);
    this.adopt(reply, reply.user.id);
    return reply.user;
  }
  walletChallenge(address: string) {
    return this.call<"auth-wallet-challenge">("POST", "/auth/wallet/challenge", { address }, false);
  }
  async walletVerify(address: string, signature: string): Promise<User> {
    const reply = await this.call<"auth-wallet-verify">("POST", "/auth/wallet/verify", { address, signature }, false);
    this.adopt(reply, reply.user.id);
    return reply.user;
  }
  async logout() {
    try {
      await this.call<"auth-logout">("POST", "/auth/logout");
    } finally {
      this.forget();
    }
  }
  sessions() {
    return this.call<"auth-sessions-list">("GET", "/auth/sessions");
  }
  revokeSession(id: string) {
    return this.call<"auth-sessions-delete">("DELETE", `/auth/sessions/${encodeURIComponent(id)}`);
  }

  // Users
  me() {
    return this.call<"users-me-get">("GET", "/users/me");
  }
  updateMe(change: { displayName?: string; status?: UserStatus; statusText?: string; whoCanAddMe?: WhoCanAddMe }) {
    // Typed here, not from the operation: openapi.yaml's `anyOf` (at least one field) generates `unknown`.
    return this.call<"users-me-update">("PATCH", "/users/me", change);
  }
  async userByName(username: string): Promise<User | null> {
    const page = await this.call<"users-batch-get">("GET", `/users?username=${encodeURIComponent(username)}`);
    return page.items[0] ?? null;
  }
  usersByIds(ids: string[]) {
    return this.call<"users-batch-get">("GET", `/users?ids=${ids.map(encodeURIComponent).join(",")}`);
  }
  block(userId: string) {
    return this.call<"users-blocks-put">("PUT", `/users/me/blocks/${encodeURIComponent(userId)}`);
  }
  unblock(userId: string) {
    return this.call<"users-blocks-delete">("DELETE", `/users/me/blocks/${encodeURIComponent(userId)}`);
  }
  blocks(cursor?: string) {
    return this.call<"users-blocks-list">("GET", `/users/me/blocks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  }

  // Invitations (to groups, for people whose `whoCanAddMe` is `nobody`) and invite links
  invitations() {
    return this.call<"invitations-list">("GET", "/users/me/invitations");
  }
  acceptInvitation(id: string) {
    return this.call<"invitations-accept">("POST", `/invitations/${encodeURIComponent(id)}/accept`);
  }
  declineInvitation(id: string) {
    return this.call<"invitations-decline">("DELETE", `/invitations/${encodeURIComponent(id)}`);
  }
  /** A new invite link to a group: `expiresInSeconds` 60..604800 (a day when absent), `maxUses` absent for no limit. */
  createInvite(id: string, options: { maxUses?: number; expiresInSeconds?: number } = {}) {
    return this.call<"invites-create">("POST", `/conversations/${id}/invites`, options);
  }
  /** The group's live links (not revoked, expired or used up), newest first. */
  invites(id: string) {
    return this.call<"invites-list">("GET", `/conversations/${id}/invites`);
  }
  revokeInvite(id: string, code: string) {
    return this.call<"invites-delete">("DELETE", `/conversations/${id}/invites/${encodeURIComponent(code)}`);
  }
  /** Joins the group of an invite link: 404 unknown, 410 expired/used up/revoked, 403 banned, 409 full. */
  joinByInvite(code: string) {
    return this.call<"invites-join">("POST", `/invites/${encodeURIComponent(code)}/join`);
  }

  // Push notifications
  /** The server's VAPID public key (base64url), for `pushManager.subscribe`'s `applicationServerKey`. */
  vapidPublicKey() {
    return this.call<"push-vapid-key">("GET", "/push/vapid-public-key", undefined, false);
  }
  /** Registers this browser's subscription; the same endpoint again answers the same id. */
  addPushSubscription(subscription: WebPushSubscriptionInput) {
    return this.call<"push-subscriptions-create">("POST", "/users/me/push-subscriptions", subscription);
  }
  pushSubscriptions() {
    return this.call<"push-subscriptions-list">("GET", "/users/me/push-subscriptions");
  }
  deletePushSubscription(id: string) {
    return this.call<"push-subscriptions-delete">("DELETE", `/users/me/push-subscriptions/${encodeURIComponent(id)}`);
  }
  /** A conversation's push level for me, muted until `mutedUntil` (RFC 3339; null lifts a mute). */
  setNotifications(id: string, level: NotificationLevel, mutedUntil: string | null = null) {
    return this.call<"notifications-put">("PUT", `/conversations/${id}/notifications`, { level, mutedUntil });
  }

  // Conversations
  conversations(cursor?: string | null) {
    return this.call<"conversations-list">("GET", `/conversations?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  }
  conversation(id: string) {
    return this.call<"conversations-get">("GET", `/conversations/${id}`);
  }
  openDirect(userId: string) {
    return this.call<"conversations-create">("POST", "/conversations", { type: "direct", memberIds: [userId] });
  }
  createGroup(name: string, memberIds: string[]) {
    return this.call<"conversations-create">("POST", "/conversations", { type: "group", name, memberIds });
  }
  rename(id: string, name: string) {
    return this.call<"conversations-update">("PATCH", `/conversations/${id}`, { name });
  }
  /** Slow mode: a plain member's messages at least `seconds` apart (0 turns it off; owner and admins). */
  setSlowMode(id: string, seconds: number) {
    return this.call<"conversations-update">("PATCH", `/conversations/${id}`, { slowModeSeconds: seconds });
  }
  async members(id: string): Promise<Member[]> {
    const all: Member[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page: Page<Member> = await this.call<"members-list">("GET", `/conversations/${id}/members?limit=100${query}`);
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }
  addMembers(id: string, userIds: string[]) {
    return this.call<"members-add">("POST", `/conversations/${id}/members`, { userIds });
  }
  removeMember(id: string, userId: string) {
    return this.call<"members-remove">("DELETE", `/conversations/${id}/members/${userId}`);
  }
  setRole(id: string, userId: string, role: Exclude<Role, "owner">) {
    return this.call<"members-update">("PATCH", `/conversations/${id}/members/${userId}`, { role });
  }
  transferOwnership(id: string, userId: string) {
    return this.call<"conversations-transfer-owner">("POST", `/conversations/${id}/owner`, { userId });
  }

  // Moderation
  /** Mutes a group member for `durationSeconds` (1..2592000): answers until when. */
  mute(id: string, userId: string, durationSeconds: number) {
    return this.call<"mutes-put">("PUT", `/conversations/${id}/mutes/${userId}`, { durationSeconds });
  }
  unmute(id: string, userId: string) {
    return this.call<"mutes-delete">("DELETE", `/conversations/${id}/mutes/${userId}`);
  }
  /** Bans a user from a group (removed if a member, and kept out). */
  ban(id: string, userId: string, reason?: string) {
    return this.call<"bans-put">("PUT", `/conversations/${id}/bans/${userId}`, reason ? { reason } : undefined);
  }
  unban(id: string, userId: string) {
    return this.call<"bans-delete">("DELETE", `/conversations/${id}/bans/${userId}`);
  }
  bans(id: string) {
    return this.call<"bans-list">("GET", `/conversations/${id}/bans`);
  }
  /** Reports a message (its sender) or a member to the conversation's owner and admins. */
  report(report: { conversationId: string; messageId?: string; userId?: string; reason: ReportReason; note?: string }) {
    return this.call<"reports-create">("POST", "/reports", report);
  }
  /** A conversation's reports, newest first (owner and admins; none about the caller). */
  reports(id: string, status?: ReportStatus) {
    return this.call<"conversation-reports-list">("GET", `/conversations/${id}/reports${status ? `?status=${status}` : ""}`);
  }
  closeReport(id: string, reportId: string, status: Exclude<ReportStatus, "open">) {
    return this.call<"conversation-reports-update">("PATCH", `/conversations/${id}/reports/${encodeURIComponent(reportId)}`, { status });
  }
  /** The pinned messages, newest pin first (at most 50). */
  pins(id: string) {
    return this.call<"pins-list">("GET", `/conversations/${id}/pins`);
  }
  /** Pins (`on`) or unpins a message; both are idempotent. */
  pin(id: string, messageId: string, on: boolean) {
    return this.call<"pins-put" | "pins-delete">(on ? "PUT" : "DELETE", `/conversations/${id}/pins/${messageId}`);
  }
  /**
   * `GET /sync`: without `since`, a token for now (nothing else); with it, every conversation changed
   * since (call again at once with `next` while `more`). A token past 30 days is `410 gone`.
   */
  sync(since?: string | null) {
    return this.call<"sync-get">("GET", since ? `/sync?since=${encodeURIComponent(since)}` : "/sync");
  }
  markRead(id: string, messageId: string) {
    return this.call<"conversations-read">("POST", `/conversations/${id}/read`, { messageId });
  }

  // Messages
  /** `parentMessageId` sends a thread reply; `mentions` are user ids of members. */
  send(id: string, clientMessageId: string, body: string, extra: SendExtra = {}) {
    const request: RequestBody<"messages-send"> = { clientMessageId, body };
    if (extra.parentMessageId) request.parentMessageId = extra.parentMessageId;
    if (extra.mentions && extra.mentions.length > 0) request.mentions = extra.mentions;
    if (extra.attachmentIds && extra.attachmentIds.length > 0) request.attachmentIds = extra.attachmentIds;
    return this.call<"messages-send">("POST", `/conversations/${id}/messages`, request);
  }
  message(id: string, messageId: string) {
    return this.call<"messages-get">("GET", `/conversations/${id}/messages/${messageId}`);
  }
  /** A thread's replies, oldest first; `cursor` continues with newer ones. */
  replies(id: string, messageId: string, cursor?: string | null, limit = 50) {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    return this.call<"messages-replies">("GET", `/conversations/${id}/messages/${messageId}/replies?limit=${limit}${query}`);
  }
  /** Adds (`on`) or takes back one of my reactions; both are idempotent. */
  react(id: string, messageId: string, reaction: string, on: boolean) {
    return this.call<"reactions-put" | "reactions-delete">(on ? "PUT" : "DELETE", `/conversations/${id}/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`);
  }
  /** Newest first; every term is a word prefix; all conversations, or the one given. */
  searchMessages(q: string, conversationId?: string | null, cursor?: string | null, limit = 20) {
    let query = `q=${encodeURIComponent(q)}&limit=${limit}`;
    if (conversationId) query += `&conversationId=${encodeURIComponent(conversationId)}`;
    if (cursor) query += `&cursor=${encodeURIComponent(cursor)}`;
    return this.call<"search-messages">("GET", `/search/messages?${query}`);
  }
  /** Newest first; `cursor` continues a page. */
  history(id: string, cursor?: string | null, limit = 50) {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    return this.call<"messages-list">("GET", `/conversations/${id}/messages?limit=${limit}${query}`);
  }
  /** Oldest first, everything after the message `afterId` (or continuing `cursor`). */
  after(id: string, afterId: string, cursor?: string | null) {
    const query = cursor ? `cursor=${encodeURIComponent(cursor)}` : `after=${encodeURIComponent(afterId)}`;
    return this.call<"messages-list">("GET", `/conversations/${id}/messages?limit=100&${query}`);
  }
  // Attachments
  /** Reserves an upload: where and with which headers to `PUT` the bytes (see api/upload.ts). */
  reserveAttachment(id: string, fileName: string, contentType: string, size: number) {
    return this.call<"attachments-create">("POST", `/conversations/${id}/attachments`, { fileName, contentType, size });
  }
  /** One attachment with a fresh download `url`. */
  attachment(id: string, attachmentId: string) {
    return this.call<"attachments-get">("GET", `/conversations/${id}/attachments/${encodeURIComponent(attachmentId)}`);
  }

  edit(id: string, messageId: string, body: string) {
    return this.call<"messages-update">("PATCH", `/conversations/${id}/messages/${messageId}`, { body });
  }
  deleteMessage(id: string, messageId: string) {
    return this.call<"messages-delete">("DELETE", `/conversations/${id}/messages/${messageId}`);
  }
}
