// The client's state and what changes it: API replies and WebSocket events. Components subscribe and
// re-render on `emit`. Nothing here is persisted but the session (see api/client.ts).

import { Api, ApiError, describeError } from "../api/client";
import type {
  Attachment,
  Ban,
  Conversation,
  Invitation,
  Member,
  Message,
  NotificationLevel,
  NotificationSettings,
  ServerEvent,
  SyncAnswer,
  User,
  UserStatus,
  WhoCanAddMe,
} from "../api/types";
import { putFile, type PutHandle } from "../api/upload";
import { applyInvitation, conversationIdFromHash, joinCodeFromHash, type InvitationChange } from "./invites";
import { mentionedIds, type Mentionable } from "./mentions";
import { activeUntil, mutedUntilFrom, nextSendAt, retryAt, slowModeApplies } from "./moderation";
import { listenToServiceWorker, PushState } from "./push";
import { applyReaction, reacted, ReactionLedger, type ReactionEvent } from "./reactions";
import { Realtime, type SocketState } from "./realtime";
import { mergeConversations, syncTimeline } from "./sync";
import {
  addPending,
  backoff,
  combine,
  dropPending,
  emptyThread,
  emptyTimeline,
  gapBefore,
  loadLatest,
  loadOlder,
  loadReplies,
  merge,
  mergeThread,
  newClientMessageId,
  newest,
  updateMessage,
  updatePending,
  type Thread,
  type Timeline,
} from "./timeline";
import {
  addFiles,
  allDone,
  contentTypeOf,
  nextToStart,
  readyAttachments,
  removeUpload,
  retryUpload,
  updateUpload,
  type Upload,
} from "./uploads";

export interface Config {
  httpUrl: string;
  wsUrl: string;
}

export type Phase = "starting" | "signed-out" | "signed-in";
export type View = "chats" | "settings";

const MAX_SEND_ATTEMPTS = 8;

/** A composer's key: the conversation's, or a thread's in it. */
export const draftKey = (id: string, parentId?: string) => (parentId ? `${id}/${parentId}` : id);
const TYPING_SHOWN_MS = 5000;
/**
 * A catch-up's second sync, this long after the first: the server records a change for `GET /sync`
 * shortly after it is made (from the table's stream), so one made just before a sync shows in the next.
 */
const SYNC_SETTLE_MS = 5000;

export class AppState {
  phase: Phase = "starting";
  view: View = "chats";
  me: User | null = null;
  users = new Map<string, User>();
  conversations: Conversation[] = [];
  conversationsCursor: string | null = null;
  conversationsLoaded = false;
  conversationsError: string | null = null;
  openId: string | null = null;
  timelines = new Map<string, Timeline>();
  members = new Map<string, Member[]>();
  typing = new Map<string, Map<string, number>>();
  /** Threads opened so far, by parent message id; `threadId` is the one shown (in the open conversation). */
  threads = new Map<string, Thread>();
  threadId: string | null = null;
  socket: SocketState = "stopped";
  notice: string | null = null;
  /** Catch-ups run after reconnects (for tests and the status line). */
  catchUps = 0;
  /** Where the next `GET /sync` starts: the `next` of the last answer (null: none yet, catch up in full). */
  syncToken: string | null = null;
  /** Each composer's files before sending, by `draftKey` (in memory only). */
  drafts = new Map<string, Upload[]>();
  /** Download URLs fetched again (`GET .../attachments/{id}`), by attachment id. */
  freshUrls = new Map<string, string>();
  /**
   * My push settings per conversation, as the last `PUT .../notifications` answered them (the
   * conversation read from the API does not carry them): none held means not changed here.
   */
  notificationSettings = new Map<string, NotificationSettings>();
  /** Push notifications on this browser. */
  readonly push: PushState;
  /** My pending invitations to groups, newest first. */
  invitations: Invitation[] = [];
  /** An invite code from the address (`#/join/<code>`), waiting for me to join or not. */
  joinCode: string | null = null;
  /** Pinned messages per conversation, newest pin first, once read (`GET .../pins`). */
  pins = new Map<string, Message[]>();
  /** Mutes heard of (events, answers, refusals) per conversation: user id → until (RFC 3339). */
  mutes = new Map<string, Map<string, string>>();
  /** Slow mode: when I may send again, per conversation (epoch ms). */
  slowUntil = new Map<string, number>();
  /** Bans per group, once read (owner and admins). */
  bans = new Map<string, Ban[]>();

  readonly api: Api;
  realtime: Realtime | null = null;
  private listeners = new Set<() => void>();
  private userFetch = new Set<string>();
  private userTimer: ReturnType<typeof setTimeout> | null = null;
  private lastTypingSent = new Map<string, number>();
  private catchingUp = new Map<string, Promise<void>>();
  private ledger = new ReactionLedger();
  private putting = new Map<string, PutHandle>();
  /** Messages read again for their download URLs (event copies carry none). */
  private urlFetch = new Set<string>();
  private syncing: Promise<void> | null = null;
  private syncQueued: Promise<void> | null = null;
  private settleTimer: ReturnType<typeof setTimeout> | null = null;
  private unwatchWake: (() => void) | null = null;

  constructor(readonly config: Config, storage: Storage) {
    this.api = new Api(config.httpUrl, storage);
    this.api.onSignedOut = () => this.signedOut("Your session ended. Sign in again.");
    this.push = new PushState(this.api, () => this.emit());
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of this.listeners) listener();
  }

  setNotice(notice: string | null) {
    this.notice = notice;
    this.emit();
  }

  fail(error: unknown) {
    this.setNotice(describeError(error));
  }

  // ---- session ----

  async start() {
    if (typeof window !== "undefined") window.addEventListener("hashchange", () => this.route());
    listenToServiceWorker(
      (id) => this.openFromNotification(id),
      () => (this.phase === "signed-in" && this.view === "chats" && document.visibilityState === "visible" ? this.openId : null),
    );
    const saved = this.api.saved();
    if (!saved) {
      this.phase = "signed-out";
      return this.emit();
    }
    try {
      await this.api.refresh();
      await this.signedIn(await this.api.me());
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return this.signedOut(null);
      // Offline or busy: keep the saved session and try again.
      this.phase = "signed-out";
      this.notice = describeError(error);
      this.emit();
    }
  }

  async signedIn(me: User) {
    this.me = me;
    this.users.set(me.id, me);
    this.phase = "signed-in";
    this.notice = null;
    this.emit();
    this.realtime = new Realtime(
      this.config.wsUrl,
      () => this.api.token(),
      (event) => this.handle(event),
      (reconnected) => {
        if (reconnected) void this.catchUp();
      },
      (state) => {
        this.socket = state;
        this.emit();
      },
    );
    this.realtime.start();
    this.watchWake();
    void this.push.check();
    // The sync token is asked for with the list, first: a change the list does not show yet is in the
    // first sync's answer (the token is not waited for: the list and a conversation show meanwhile).
    void this.takeSyncToken();
    void this.loadInvitations();
    await this.loadConversations();
    this.route();
  }

  /** Follows the address: `#/join/<code>` asks whether to join that group, `#/c/<id>` opens a conversation. */
  route(hash: string = typeof location === "undefined" ? "" : location.hash) {
    if (this.phase !== "signed-in") return;
    const code = joinCodeFromHash(hash);
    if (code) {
      this.joinCode = code;
      this.view = "chats";
      return this.emit();
    }
    const id = conversationIdFromHash(hash);
    if (id && id !== this.openId) void this.open(id);
  }

  signedOut(notice: string | null) {
    this.realtime?.stop();
    this.realtime = null;
    this.unwatchWake?.();
    this.unwatchWake = null;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.syncToken = null;
    this.api.forget();
    this.phase = "signed-out";
    this.me = null;
    this.users.clear();
    this.conversations = [];
    this.conversationsLoaded = false;
    this.timelines.clear();
    this.members.clear();
    this.threads.clear();
    this.threadId = null;
    this.ledger.clear();
    for (const handle of this.putting.values()) handle.abort();
    this.putting.clear();
    this.drafts.clear();
    this.freshUrls.clear();
    this.urlFetch.clear();
    this.notificationSettings.clear();
    this.invitations = [];
    this.joinCode = null;
    this.pins.clear();
    this.mutes.clear();
    this.slowUntil.clear();
    this.bans.clear();
    this.openId = null;
    this.notice = notice;
    this.emit();
  }

  async logout() {
    // While the token is good: this browser stops getting my notifications.
    await this.push.signOut();
    try {
      await this.api.logout();
    } catch {
      // Signed out here whatever the server said.
    }
    this.signedOut(null);
  }

  // ---- users ----

  user(id: string): User | undefined {
    const user = this.users.get(id);
    if (!user) this.wantUsers([id]);
    return user;
  }

  name(id: string): string {
    const user = this.user(id);
    return user ? user.displayName || user.username : "…";
  }

  /** Batches unknown user ids into `GET /users?ids=` (100 at a time). */
  wantUsers(ids: string[]) {
    for (const id of ids) if (!this.users.has(id)) this.userFetch.add(id);
    if (this.userFetch.size === 0 || this.userTimer) return;
    this.userTimer = setTimeout(async () => {
      this.userTimer = null;
      const ids = [...this.userFetch].slice(0, 100);
      try {
        const page = await this.api.usersByIds(ids);
        for (const user of page.items) this.users.set(user.id, user);
      } catch {
        // Names stay "…"; the next render asks again.
      }
      for (const id of ids) this.userFetch.delete(id);
      this.emit();
      if (this.userFetch.size > 0) this.wantUsers([]);
    }, 10);
  }

  async updateMe(change: { displayName?: string; status?: UserStatus; whoCanAddMe?: WhoCanAddMe }) {
    const me = await this.api.updateMe(change);
    // `whoCanAddMe` is in my own profile only: kept when an answer leaves it out.
    this.me = { ...me, whoCanAddMe: me.whoCanAddMe ?? change.whoCanAddMe ?? this.me?.whoCanAddMe };
    this.users.set(me.id, this.me);
    this.emit();
  }

  /** My own profile read again (`GET /users/me`: with `whoCanAddMe`, which sign-in answers may leave out). */
  async refreshMe() {
    const me = await this.api.me();
    if (this.me?.id !== me.id) return;
    this.me = me;
    this.users.set(me.id, me);
    this.emit();
  }

  // ---- conversations ----

  async loadConversations(more = false) {
    try {
      const page = await this.api.conversations(more ? this.conversationsCursor : null);
      const known = new Map((more ? this.conversations : []).map((c) => [c.id, c]));
      for (const c of page.items) known.set(c.id, c);
      this.conversations = [...known.values()];
      this.sortConversations();
      this.conversationsCursor = page.nextCursor;
      this.conversationsLoaded = true;
      this.conversationsError = null;
      for (const c of page.items) if (c.type === "direct") void this.loadMembers(c.id, true);
    } catch (error) {
      this.conversationsError = describeError(error);
    }
    this.emit();
  }

  private sortConversations() {
    const at = (c: Conversation) => c.lastMessage?.createdAt ?? c.updatedAt;
    this.conversations.sort((a, b) => (at(b) > at(a) ? 1 : at(b) < at(a) ? -1 : 0));
  }

  upsertConversation(conversation: Conversation) {
    const i = this.conversations.findIndex((c) => c.id === conversation.id);
    if (i >= 0) this.conversations[i] = { ...this.conversations[i], ...conversation };
    else this.conversations.push(conversation);
    this.sortConversations();
    this.emit();
  }

  conversation(id: string): Conversation | undefined {
    return this.conversations.find((c) => c.id === id);
  }

  /** A direct conversation's other member, once its members are known. */
  otherMember(conversation: Conversation): string | undefined {
    return this.members.get(conversation.id)?.find((m) => m.userId !== this.me?.id)?.userId;
  }

  title(conversation: Conversation): string {
    if (conversation.type === "group") return conversation.name ?? "Group";
    const other = this.otherMember(conversation);
    return other ? this.name(other) : "Direct conversation";
  }

  async loadMembers(id: string, onlyIfMissing = false) {
    if (onlyIfMissing && this.members.has(id)) return;
    try {
      const members = await this.api.members(id);
      this.members.set(id, members);
      this.wantUsers(members.map((m) => m.userId));
      this.emit();
    } catch (error) {
      if (!onlyIfMissing) this.fail(error);
    }
  }

  async openDirectWith(username: string): Promise<void> {
    const user = await this.api.userByName(username.trim().toLowerCase());
    if (!user) throw new Error(`Nobody is called ${username.trim()}.`);
    if (user.id === this.me?.id) throw new Error("That is you.");
    this.users.set(user.id, user);
    const conversation = await this.api.openDirect(user.id);
    this.upsertConversation(conversation);
    await this.loadMembers(conversation.id);
    await this.open(conversation.id);
  }

  async createGroup(name: string, usernames: string[]): Promise<void> {
    const ids: string[] = [];
    for (const username of usernames) {
      const user = await this.api.userByName(username.trim().toLowerCase());
      if (!user) throw new Error(`Nobody is called ${username.trim()}.`);
      this.users.set(user.id, user);
      if (user.id !== this.me?.id) ids.push(user.id);
    }
    const { invited, ...conversation } = await this.api.createGroup(name.trim(), ids);
    this.upsertConversation(conversation);
    await this.open(conversation.id);
    if (invited && invited.length > 0) this.setNotice(this.invitedNotice(invited));
  }

  /** What to say of people invited instead of added (their `whoCanAddMe` is `nobody`). */
  invitedNotice(invited: string[]): string {
    const names = invited.map((id) => this.name(id)).join(", ");
    return `${names} ${invited.length > 1 ? "accept" : "accepts"} invitations only: invited, and in the group once accepted.`;
  }

  async open(id: string | null) {
    if (id !== this.openId) this.threadId = null;
    this.openId = id;
    this.view = "chats";
    history.replaceState(null, "", id ? `#/c/${id}` : "#/");
    this.emit();
    if (!id) return;
    if (!this.conversation(id)) {
      try {
        this.upsertConversation(await this.api.conversation(id));
      } catch (error) {
        this.openId = null;
        return this.fail(error);
      }
    }
    void this.loadMembers(id);
    void this.loadPins(id);
    const timeline = this.timelines.get(id);
    if (!timeline?.loaded) {
      try {
        const page = await this.api.history(id);
        this.setTimeline(id, loadLatest(this.timeline(id), page.items, page.nextCursor, this.me?.id));
      } catch (error) {
        this.fail(error);
      }
    } else {
      await this.catchUpConversation(id);
    }
    this.markRead(id);
  }

  /** A click on a notification (through the service worker): its conversation, once signed in. */
  private openFromNotification(id: string) {
    if (this.phase === "signed-in") void this.open(id);
    else history.replaceState(null, "", `#/c/${id}`); // `signedIn` opens it
  }

  /** My push level for a conversation, and a mute until `mutedUntil` (null: none); the answer is held. */
  async setNotifications(id: string, level: NotificationLevel, mutedUntil: string | null = null) {
    const settings = await this.api.setNotifications(id, level, mutedUntil);
    this.notificationSettings.set(id, settings);
    this.emit();
  }

  timeline(id: string): Timeline {
    return this.timelines.get(id) ?? emptyTimeline();
  }

  private setTimeline(id: string, timeline: Timeline) {
    this.timelines.set(id, timeline);
    this.wantUsers(timeline.messages.map((m) => m.senderId));
    this.emit();
  }

  async loadOlder(id: string) {
    const timeline = this.timeline(id);
    if (!timeline.hasOlder || !timeline.olderCursor) return;
    const page = await this.api.history(id, timeline.olderCursor);
    this.setTimeline(id, loadOlder(this.timeline(id), page.items, page.nextCursor, this.me?.id));
  }

  /** Everything after the newest held message, oldest first, page by page (one at a time per conversation). */
  catchUpConversation(id: string): Promise<void> {
    const running = this.catchingUp.get(id);
    if (running) return running.then(() => this.catchUpConversation(id));
    const task = (async () => {
      const last = newest(this.timeline(id));
      if (!last) {
        const page = await this.api.history(id);
        this.setTimeline(id, loadLatest(this.timeline(id), page.items, page.nextCursor, this.me?.id));
        return;
      }
      let cursor: string | null = null;
      do {
        const page = await this.api.after(id, last.id, cursor);
        this.setTimeline(id, merge(this.timeline(id), page.items, this.me?.id));
        this.feedThreads(id, page.items);
        cursor = page.nextCursor;
      } while (cursor);
    })().finally(() => this.catchingUp.delete(id));
    this.catchingUp.set(id, task);
    return task;
  }

  /** After a reconnect: what changed while the socket was down (`GET /sync` from the token held). */
  async catchUp() {
    this.catchUps += 1;
    await this.syncNow();
  }

  /**
   * A sync, then the open conversation's members again (read positions are no news to a sync) and its
   * read marker, and one more sync a little later (`SYNC_SETTLE_MS`).
   */
  private async syncNow() {
    await this.sync();
    void this.loadInvitations();
    this.forgetMyMutes();
    if (this.openId) {
      void this.loadMembers(this.openId);
      void this.loadPins(this.openId);
      this.markRead(this.openId);
    }
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      if (this.phase === "signed-in") void this.sync();
    }, SYNC_SETTLE_MS);
  }

  /**
   * Everything that changed since the sync token, answer by answer while `more`: one sync at a time
   * (asked for meanwhile, it runs once more after the one running). Without a token, or with one the
   * server no longer takes (`410` past 30 days, `400`), the full catch-up (`reload`).
   */
  sync(): Promise<void> {
    if (this.syncQueued) return this.syncQueued;
    if (this.syncing) {
      const after = () => {
        this.syncQueued = null;
        return this.sync();
      };
      this.syncQueued = this.syncing.then(after, after);
      return this.syncQueued;
    }
    const task = this.syncAnswers().finally(() => {
      this.syncing = null;
    });
    this.syncing = task;
    return task;
  }

  private async syncAnswers() {
    const me = this.me;
    if (!this.syncToken) return this.reload();
    const catchUps: Promise<void>[] = [];
    let refused = false;
    try {
      let more = true;
      while (more) {
        const answer = await this.api.sync(this.syncToken);
        if (this.me !== me) return;
        catchUps.push(...this.applySync(answer));
        this.syncToken = answer.next;
        more = answer.more;
      }
    } catch (error) {
      if (this.me !== me) return;
      if (error instanceof ApiError && (error.status === 410 || error.status === 400)) refused = true;
      else this.fail(error); // the token stays: the next reconnect or wake asks again from it
    }
    await Promise.all(catchUps);
    if (refused) await this.reload();
  }

  /**
   * One answer into what is held: changed conversations' views into the list (their unread counts
   * with them), their messages into loaded timelines and threads, removed conversations forgotten.
   * Returns the per-conversation catch-ups (`after=`) it started: for a conversation `limited` (more
   * messages changed than the answer holds) or whose new messages do not follow the newest held.
   */
  private applySync(answer: SyncAnswer): Promise<void>[] {
    for (const id of answer.removed) this.forgetConversation(id);
    this.conversations = mergeConversations(
      this.conversations,
      answer.conversations.map((c) => c.conversation),
      answer.removed,
    );
    this.sortConversations();
    const catchUps: Promise<void>[] = [];
    for (const { conversation, messages, limited } of answer.conversations) {
      const id = conversation.id;
      if (conversation.type === "direct") void this.loadMembers(id, true);
      this.feedThreads(id, messages);
      const timeline = this.timelines.get(id);
      if (!timeline?.loaded) continue; // read when opened
      const synced = syncTimeline(timeline, messages, this.me?.id);
      if (synced.timeline !== timeline) this.setTimeline(id, synced.timeline);
      if (limited || !synced.complete) catchUps.push(this.catchUpConversation(id).catch((error) => this.fail(error)));
    }
    this.emit();
    return catchUps;
  }

  /**
   * The full catch-up, without a usable sync token: a fresh token, the conversation list again, and
   * every loaded timeline from where it stopped.
   */
  private async reload() {
    this.syncToken = null;
    const token = this.takeSyncToken();
    await this.loadConversations();
    await Promise.all(
      [...this.timelines.entries()]
        .filter(([, t]) => t.loaded)
        .map(([id]) => this.catchUpConversation(id).catch((error) => this.fail(error))),
    );
    await token;
  }

  /** A sync token for now (`GET /sync` without `since`); none when that fails (then the next catch-up is a full one). */
  private async takeSyncToken() {
    const me = this.me;
    try {
      const { next } = await this.api.sync();
      if (this.me === me) this.syncToken = next;
    } catch {
      // Kept null: the next catch-up reloads everything and asks again.
    }
  }

  /** Syncs when the page is back: visible again after being hidden (a sleep, another tab), or online again. */
  private watchWake() {
    this.unwatchWake?.();
    if (typeof document === "undefined" || typeof window === "undefined") return;
    let hidden = document.visibilityState === "hidden";
    const visibility = () => {
      if (document.visibilityState === "hidden") hidden = true;
      else if (hidden) {
        hidden = false;
        this.woke();
      }
    };
    const online = () => this.woke();
    document.addEventListener("visibilitychange", visibility);
    window.addEventListener("online", online);
    this.unwatchWake = () => {
      document.removeEventListener("visibilitychange", visibility);
      window.removeEventListener("online", online);
    };
  }

  /** Back from sleep or offline (the socket may not have noticed its drop yet): what was missed, now. */
  private woke() {
    if (this.phase !== "signed-in" || !this.conversationsLoaded) return;
    void this.syncNow();
  }

  markRead(id: string) {
    const conversation = this.conversation(id);
    const last = newest(this.timeline(id));
    if (!conversation || !last || last.seq <= conversation.readSeq) return;
    if (typeof document !== "undefined" && document.visibilityState === "hidden") return;
    conversation.readSeq = last.seq;
    conversation.unreadCount = 0;
    conversation.mentionCount = 0;
    this.emit();
    this.api.markRead(id, last.id).catch(() => {
      // A read marker is best effort; the next message moves it again.
    });
  }

  // ---- sending ----

  /** The timeline that holds a send's optimistic bubble: the conversation's, or a thread's. */
  private box(id: string, parentId?: string): Timeline {
    return parentId ? (this.threads.get(parentId)?.replies ?? emptyTimeline()) : this.timeline(id);
  }

  private setBox(id: string, parentId: string | undefined, timeline: Timeline) {
    if (!parentId) return this.setTimeline(id, timeline);
    const thread = this.threads.get(parentId);
    if (!thread) return;
    this.threads.set(parentId, { ...thread, replies: timeline });
    this.emit();
  }

  /**
   * Sends `body` (to a thread when `parentId` is given), with the members it `@`-mentions and the
   * composer's uploaded files. False (nothing sent) while a file is still uploading or failed, when
   * there is neither text nor a file, or while slow mode or a mute holds me back.
   */
  send(id: string, body: string, parentId?: string): boolean {
    if (this.sendableAt(id) !== null || (this.me && this.mutedUntil(id, this.me.id))) return false;
    const text = body.trim();
    const draft = draftKey(id, parentId);
    const queue = this.drafts.get(draft) ?? [];
    if (!allDone(queue)) return false;
    const attachments = readyAttachments(queue);
    if (!text && attachments.length === 0) return false;
    const clientMessageId = newClientMessageId();
    const mentions = mentionedIds(text, this.mentionable(id));
    this.drafts.delete(draft);
    this.setBox(
      id,
      parentId,
      addPending(this.box(id, parentId), {
        clientMessageId,
        body: text,
        createdAt: new Date().toISOString(),
        state: "sending",
        attempts: 0,
        parentMessageId: parentId,
        mentions,
        attachments: attachments.length > 0 ? attachments : undefined,
      }),
    );
    this.holdForSlowMode(id);
    void this.deliver(id, clientMessageId, parentId);
    return true;
  }

  /** Sends until stored: transient failures (offline, 429, 5xx) retry with the same clientMessageId. */
  async deliver(id: string, clientMessageId: string, parentId?: string) {
    for (let attempt = 0; attempt < MAX_SEND_ATTEMPTS; attempt++) {
      const pending = this.box(id, parentId).pending.find((p) => p.clientMessageId === clientMessageId);
      if (!pending) return;
      try {
        const message = await this.api.send(id, clientMessageId, pending.body, {
          parentMessageId: pending.parentMessageId,
          mentions: pending.mentions,
          attachmentIds: pending.attachments?.map((a) => a.id),
        });
        this.receive(message);
        this.holdForSlowMode(id);
        return;
      } catch (error) {
        const slow = this.refused(id, error);
        const transient = error instanceof ApiError && error.transient;
        const last = attempt === MAX_SEND_ATTEMPTS - 1;
        this.setBox(
          id,
          parentId,
          updatePending(this.box(id, parentId), clientMessageId, {
            state: transient && !last ? "retrying" : "failed",
            // Held back by slow mode: the server's words (the wait), not a rate limit's.
            error: slow && error instanceof Error ? error.message : describeError(error),
            attempts: attempt + 1,
          }),
        );
        if (!transient) return;
        const retryAfter = error instanceof ApiError ? error.retryAfter : undefined;
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt, retryAfter)));
      }
    }
  }

  retry(id: string, clientMessageId: string, parentId?: string) {
    const pending = this.box(id, parentId).pending.find((p) => p.clientMessageId === clientMessageId);
    if (!pending) return;
    this.setBox(id, parentId, updatePending(this.box(id, parentId), clientMessageId, { state: "sending", error: undefined }));
    void this.deliver(id, clientMessageId, parentId);
  }

  discard(id: string, clientMessageId: string, parentId?: string) {
    this.setBox(id, parentId, dropPending(this.box(id, parentId), clientMessageId));
  }

  // ---- attachments ----

  uploads(id: string, parentId?: string): Upload[] {
    return this.drafts.get(draftKey(id, parentId)) ?? [];
  }

  /** Adds files to a composer (checked first; the refusals are returned) and starts uploading them. */
  attach(id: string, parentId: string | undefined, files: File[]): string[] {
    const draft = draftKey(id, parentId);
    const { queue, errors } = addFiles(this.uploads(id, parentId), files);
    this.drafts.set(draft, queue);
    this.emit();
    this.pump(id, parentId);
    return errors;
  }

  /** Cancels an upload (or removes a finished one) before sending. */
  removeUpload(id: string, parentId: string | undefined, key: string) {
    this.putting.get(key)?.abort();
    this.putting.delete(key);
    const draft = draftKey(id, parentId);
    this.drafts.set(draft, removeUpload(this.uploads(id, parentId), key));
    this.emit();
    this.pump(id, parentId);
  }

  retryUpload(id: string, parentId: string | undefined, key: string) {
    this.drafts.set(draftKey(id, parentId), retryUpload(this.uploads(id, parentId), key));
    this.emit();
    this.pump(id, parentId);
  }

  private pump(id: string, parentId: string | undefined) {
    for (const upload of nextToStart(this.uploads(id, parentId))) void this.upload(id, parentId, upload.key);
  }

  /** One file: reserved (`POST .../attachments`), then its bytes `PUT` to the storage with progress. */
  private async upload(id: string, parentId: string | undefined, key: string) {
    const draft = draftKey(id, parentId);
    const held = () => this.drafts.get(draft)?.find((u) => u.key === key);
    const set = (change: Partial<Upload>) => {
      const queue = this.drafts.get(draft);
      if (!queue || !held()) return;
      this.drafts.set(draft, updateUpload(queue, key, change));
      this.emit();
    };
    const upload = held();
    if (!upload) return;
    const file = upload.file as File;
    set({ state: "uploading", loaded: 0, error: undefined });
    try {
      const reserved = await this.api.reserveAttachment(id, file.name, contentTypeOf(file), file.size);
      if (!held()) return;
      set({ attachment: reserved.attachment });
      const handle = putFile(reserved.uploadUrl, reserved.uploadHeaders, file, (loaded) => set({ loaded }));
      this.putting.set(key, handle);
      await handle.done;
      set({ state: "done", loaded: file.size });
    } catch (error) {
      set({ state: "failed", error: describeError(error) });
    } finally {
      this.putting.delete(key);
      if (this.drafts.has(draft)) this.pump(id, parentId);
    }
  }

  /**
   * A message from an event has attachments without download URLs (they are per reader): read it once
   * (`GET .../messages/{id}`, one call for all its files), and its copy with URLs merges in.
   */
  wantUrls(message: Message) {
    if (message.deleted || this.urlFetch.has(message.id)) return;
    if (!(message.attachments ?? []).some((a) => !a.url && !this.freshUrls.has(a.id))) return;
    this.urlFetch.add(message.id);
    this.api.message(message.conversationId, message.id).then(
      (read) => this.receive(read),
      () => this.urlFetch.delete(message.id), // a click on the file asks again
    );
  }

  /** The newest download URL held for an attachment. */
  attachmentUrl(attachment: Attachment): string | undefined {
    return this.freshUrls.get(attachment.id) ?? attachment.url;
  }

  /** A fresh download URL (the old one expires after 15 minutes). */
  async refreshAttachment(attachment: Attachment): Promise<string> {
    const got = await this.api.attachment(attachment.conversationId, attachment.id);
    if (!got.url) throw new Error("No download link for this file.");
    this.freshUrls.set(attachment.id, got.url);
    this.emit();
    return got.url;
  }

  /** Members of a conversation whose user is known, for `@` mentions. */
  mentionable(id: string): Mentionable[] {
    const people: Mentionable[] = [];
    for (const member of this.members.get(id) ?? []) {
      const user = this.user(member.userId);
      if (user) people.push({ id: user.id, username: user.username, displayName: user.displayName });
    }
    return people;
  }

  // ---- threads ----

  thread(parentId: string): Thread | undefined {
    return this.threads.get(parentId);
  }

  /** The freshest copy of a message held anywhere (the timeline, or an open thread). */
  findMessage(conversationId: string, messageId: string): Message | undefined {
    const inTimeline = this.timelines.get(conversationId)?.messages.find((m) => m.id === messageId);
    if (inTimeline) return inTimeline;
    for (const thread of this.threads.values()) {
      if (thread.conversationId !== conversationId) continue;
      if (thread.parent?.id === messageId) return thread.parent;
      const reply = thread.replies.messages.find((m) => m.id === messageId);
      if (reply) return reply;
    }
    return undefined;
  }

  /** Shows the thread of `parentId`: the parent read again, and the first page of replies. */
  async openThread(conversationId: string, parentId: string) {
    this.threadId = parentId;
    const held = this.threads.get(parentId);
    if (held?.replies.loaded && !held.error) return this.emit();
    this.threads.set(parentId, { ...(held ?? emptyThread(conversationId, parentId)), error: undefined });
    this.emit();
    try {
      const [parent, page] = await Promise.all([
        this.api.message(conversationId, parentId),
        this.api.replies(conversationId, parentId),
      ]);
      const thread = this.threads.get(parentId) ?? emptyThread(conversationId, parentId);
      const next = loadReplies({ ...thread, parent: thread.parent ? combine(thread.parent, parent) : parent }, page.items, page.nextCursor, this.me?.id);
      this.threads.set(parentId, next);
      // The parent as read now is the timeline's best copy too (its counts and my reactions).
      const timeline = this.timelines.get(conversationId);
      if (timeline?.messages.some((m) => m.id === parentId)) this.timelines.set(conversationId, merge(timeline, [parent], this.me?.id));
      this.wantUsers([parent.senderId, ...page.items.map((m) => m.senderId)]);
    } catch (error) {
      const thread = this.threads.get(parentId);
      if (thread) this.threads.set(parentId, { ...thread, error: describeError(error) });
    }
    this.emit();
  }

  /** The next (newer) page of a thread's replies. */
  async loadMoreReplies(parentId: string) {
    const thread = this.threads.get(parentId);
    if (!thread || !thread.replies.hasOlder || !thread.replies.olderCursor) return;
    const page = await this.api.replies(thread.conversationId, parentId, thread.replies.olderCursor);
    this.threads.set(parentId, loadReplies(this.threads.get(parentId) ?? thread, page.items, page.nextCursor, this.me?.id));
    this.wantUsers(page.items.map((m) => m.senderId));
    this.emit();
  }

  closeThread() {
    this.threadId = null;
    this.emit();
  }

  /** Live messages into the threads held for their conversation. */
  private feedThreads(conversationId: string, messages: Message[]) {
    let changed = false;
    for (const [parentId, thread] of this.threads) {
      if (thread.conversationId !== conversationId) continue;
      const next = mergeThread(thread, messages, this.me?.id);
      if (next !== thread) {
        this.threads.set(parentId, next);
        changed = true;
      }
    }
    if (changed) this.emit();
  }

  // ---- reactions ----

  /** Changes every held copy of one message. */
  private changeMessage(conversationId: string, messageId: string, change: (m: Message) => Message) {
    const timeline = this.timelines.get(conversationId);
    if (timeline) this.timelines.set(conversationId, updateMessage(timeline, messageId, change));
    for (const [parentId, thread] of this.threads) {
      if (thread.conversationId !== conversationId) continue;
      const parent = thread.parent?.id === messageId ? change(thread.parent) : thread.parent;
      const replies = updateMessage(thread.replies, messageId, change);
      if (parent !== thread.parent || replies !== thread.replies) this.threads.set(parentId, { ...thread, parent, replies });
    }
    this.emit();
  }

  private reactionEvent(event: ReactionEvent) {
    if (this.ledger.repeat(event)) return;
    this.changeMessage(event.conversationId, event.messageId, (m) => applyReaction(m, event, this.me?.id));
  }

  /** Adds my `reaction` to a message, or takes it back: shown at once, undone if the server refuses. */
  async toggleReaction(conversationId: string, messageId: string, reaction: string) {
    const me = this.me?.id;
    const message = this.findMessage(conversationId, messageId);
    if (!me || !message) return;
    const on = !reacted(message, reaction);
    const event = (added: boolean): ReactionEvent => ({
      type: added ? "reaction.added" : "reaction.removed",
      conversationId,
      messageId,
      userId: me,
      reaction,
    });
    this.changeMessage(conversationId, messageId, (m) => applyReaction(m, event(on), me));
    try {
      await this.api.react(conversationId, messageId, reaction, on);
    } catch (error) {
      this.changeMessage(conversationId, messageId, (m) => applyReaction(m, event(!on), me));
      this.refused(conversationId, error);
      throw error;
    }
  }

  async edit(id: string, messageId: string, body: string) {
    this.receive(await this.api.edit(id, messageId, body.trim()));
  }

  async remove(id: string, messageId: string) {
    await this.api.deleteMessage(id, messageId);
    const held = this.findMessage(id, messageId);
    if (held) this.receive({ ...held, deleted: true, body: "", reactions: {}, myReactions: [], mentions: [] });
  }

  typed(id: string) {
    if (this.me && this.mutedUntil(id, this.me.id)) return; // refused while muted
    const now = Date.now();
    if (now - (this.lastTypingSent.get(id) ?? 0) < 3000) return;
    this.lastTypingSent.set(id, now);
    this.realtime?.send({ action: "typing", conversationId: id });
  }

  typers(id: string): string[] {
    const now = Date.now();
    return [...(this.typing.get(id) ?? new Map<string, number>()).entries()]
      .filter(([userId, until]) => until > now && userId !== this.me?.id)
      .map(([userId]) => userId);
  }

  // ---- invitations and invite links ----

  private changeInvitations(change: InvitationChange) {
    const next = applyInvitation(this.invitations, change);
    if (next === this.invitations) return;
    this.invitations = next;
    this.emit();
  }

  /** My pending invitations, read again (at sign-in and after every catch-up: `invitation.new` may be missed). */
  async loadInvitations() {
    const me = this.me;
    try {
      const { items } = await this.api.invitations();
      if (this.me !== me) return;
      this.wantUsers(items.map((i) => i.invitedBy));
      this.invitations = applyInvitation(this.invitations, { type: "loaded", items });
      this.emit();
    } catch {
      // Kept as held; the next catch-up reads them again.
    }
  }

  /** Accepts an invitation: I join the group, which opens. One no longer pending (`404`) leaves the list. */
  async acceptInvitation(id: string) {
    let conversation: Conversation;
    try {
      ({ conversation } = await this.api.acceptInvitation(id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.changeInvitations({ type: "answered", id });
      throw error;
    }
    this.changeInvitations({ type: "answered", id });
    this.changeInvitations({ type: "joined", conversationId: conversation.id });
    this.upsertConversation(conversation);
    await this.open(conversation.id);
  }

  /** Declines an invitation (one already gone, `404`, is as good as declined). */
  async declineInvitation(id: string) {
    try {
      await this.api.declineInvitation(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    this.changeInvitations({ type: "answered", id });
  }

  /** Joins the group of an invite link, and opens it. */
  async joinByInvite(code: string) {
    const { conversation } = await this.api.joinByInvite(code);
    this.joinCode = null;
    this.changeInvitations({ type: "joined", conversationId: conversation.id });
    this.upsertConversation(conversation);
    await this.open(conversation.id);
  }

  /** Leaves an invite link unanswered: the address goes back to the conversation shown. */
  dismissJoin() {
    this.joinCode = null;
    history.replaceState(null, "", this.openId ? `#/c/${this.openId}` : "#/");
    this.emit();
  }

  // ---- moderation ----

  /** Until when `userId` is muted in a conversation, as heard of here (null: not muted, or it is over). */
  mutedUntil(conversationId: string, userId: string, now = Date.now()): Date | null {
    return activeUntil(this.mutes.get(conversationId)?.get(userId), now);
  }

  setMute(conversationId: string, userId: string, until: string | null) {
    const held = this.mutes.get(conversationId) ?? new Map<string, string>();
    if (until) held.set(userId, until);
    else if (!held.delete(userId)) return;
    this.mutes.set(conversationId, held);
    this.emit();
  }

  /**
   * After a catch-up: my own mutes as held may be stale (a `member.unmuted` missed while away; the
   * members list does not carry mutes), so they go; a refused send or reaction shows one again.
   */
  private forgetMyMutes() {
    const me = this.me?.id;
    if (!me) return;
    let changed = false;
    for (const held of this.mutes.values()) changed = held.delete(me) || changed;
    if (changed) this.emit();
  }

  async mute(conversationId: string, userId: string, durationSeconds: number) {
    const { until } = await this.api.mute(conversationId, userId, durationSeconds);
    this.setMute(conversationId, userId, until);
  }

  async unmute(conversationId: string, userId: string) {
    await this.api.unmute(conversationId, userId);
    this.setMute(conversationId, userId, null);
  }

  async loadBans(conversationId: string) {
    const { items } = await this.api.bans(conversationId);
    this.bans.set(conversationId, items);
    this.wantUsers(items.map((b) => b.userId));
    this.emit();
  }

  /** Bans a user (removed from the group and kept out); the members and bans read again. */
  async ban(conversationId: string, userId: string, reason?: string) {
    await this.api.ban(conversationId, userId, reason?.trim() || undefined);
    this.setMute(conversationId, userId, null);
    await Promise.all([this.loadMembers(conversationId), this.loadBans(conversationId)]);
  }

  async unban(conversationId: string, userId: string) {
    await this.api.unban(conversationId, userId);
    await this.loadBans(conversationId);
  }

  /** Slow mode for a group (owner and admins; 0 turns it off). */
  async setSlowMode(conversationId: string, seconds: number) {
    this.upsertConversation(await this.api.setSlowMode(conversationId, seconds));
  }

  /** When I may send again in a conversation (epoch ms), while slow mode holds me back; else null. */
  sendableAt(conversationId: string, now = Date.now()): number | null {
    const conversation = this.conversation(conversationId);
    const until = this.slowUntil.get(conversationId);
    if (!conversation || !slowModeApplies(conversation) || until === undefined || until <= now) return null;
    return until;
  }

  /** After a send of mine: no next one before the slow-mode interval is over. */
  private holdForSlowMode(conversationId: string) {
    const conversation = this.conversation(conversationId);
    const until = conversation ? nextSendAt(conversation, Date.now()) : null;
    if (until === null) return;
    this.slowUntil.set(conversationId, Math.max(until, this.slowUntil.get(conversationId) ?? 0));
    this.emit();
  }

  /**
   * What a refused write tells: a mute of mine (`403` saying until when), or a slow-mode wait (`429`).
   * True for the slow-mode wait.
   */
  private refused(conversationId: string, error: unknown): boolean {
    if (!(error instanceof ApiError) || !this.me) return false;
    if (error.status === 403) {
      const until = mutedUntilFrom(error.message);
      if (until) this.setMute(conversationId, this.me.id, until.toISOString());
    } else if (error.status === 429 && error.code === "rate_limited") {
      const conversation = this.conversation(conversationId);
      if (!conversation || !slowModeApplies(conversation)) return false;
      this.slowUntil.set(conversationId, retryAt(error.retryAfter, Date.now(), conversation.slowModeSeconds));
      this.emit();
      return true;
    }
    return false;
  }

  // ---- pins ----

  async loadPins(conversationId: string) {
    try {
      const { items } = await this.api.pins(conversationId);
      this.pins.set(conversationId, items);
      this.wantUsers(items.map((m) => m.senderId));
      this.emit();
    } catch {
      // Not shown as pinned until read again (the next open or catch-up).
    }
  }

  isPinned(conversationId: string, messageId: string): boolean {
    return (this.pins.get(conversationId) ?? []).some((m) => m.id === messageId);
  }

  /** Pins or unpins a message; the pins read again after a pin (the server orders them). */
  async pin(conversationId: string, messageId: string, on: boolean) {
    await this.api.pin(conversationId, messageId, on);
    if (on) await this.loadPins(conversationId);
    else this.dropPin(conversationId, messageId);
  }

  private dropPin(conversationId: string, messageId: string) {
    const held = this.pins.get(conversationId);
    if (!held?.some((m) => m.id === messageId)) return;
    this.pins.set(conversationId, held.filter((m) => m.id !== messageId));
    this.emit();
  }

  /** A pinned message's newer copy into the pins (a deleted one is unpinned). */
  private updatePin(message: Message) {
    const held = this.pins.get(message.conversationId);
    const i = held?.findIndex((m) => m.id === message.id) ?? -1;
    if (!held || i < 0) return;
    if (message.deleted) return this.dropPin(message.conversationId, message.id);
    const next = [...held];
    next[i] = combine(held[i], message);
    this.pins.set(message.conversationId, next);
  }

  // ---- events ----

  /** A stored message, from a reply or an event. */
  receive(message: Message, checkGap = true) {
    const id = message.conversationId;
    const timeline = this.timelines.get(id);
    if (checkGap && timeline?.loaded && gapBefore(timeline, message)) {
      // Something was missed: fetch it first, then this one arrives (or is already) in order.
      const settle = () => this.receive(message, false);
      void this.catchUpConversation(id).then(settle, settle);
      return;
    }
    if (timeline) this.setTimeline(id, merge(timeline, [message], this.me?.id));
    this.feedThreads(id, [message]);
    this.updatePin(message);
    const conversation = this.conversation(id);
    if (conversation) {
      if (message.seq >= conversation.lastSeq) {
        const isNew = message.seq > conversation.lastSeq;
        conversation.lastSeq = message.seq;
        conversation.lastMessage = message;
        if (isNew && message.senderId !== this.me?.id && this.openId !== id) {
          conversation.unreadCount += 1;
          if (this.me && message.mentions?.includes(this.me.id)) conversation.mentionCount = (conversation.mentionCount ?? 0) + 1;
        }
        if (message.senderId === this.me?.id) conversation.readSeq = Math.max(conversation.readSeq, message.seq);
        this.sortConversations();
      }
      this.emit();
      if (this.openId === id) this.markRead(id);
    } else {
      void this.api
        .conversation(id)
        .then((c) => {
          this.upsertConversation(c);
          if (c.type === "direct") void this.loadMembers(c.id, true);
        })
        .catch(() => {});
    }
  }

  handle(event: ServerEvent) {
    switch (event.type) {
      case "message.new":
      case "message.updated":
      case "message.deleted":
        this.typing.get(event.message.conversationId)?.delete(event.message.senderId);
        return this.receive(event.message);
      case "typing": {
        const typing = this.typing.get(event.conversationId) ?? new Map<string, number>();
        typing.set(event.userId, Date.now() + TYPING_SHOWN_MS);
        this.typing.set(event.conversationId, typing);
        this.emit();
        setTimeout(() => this.emit(), TYPING_SHOWN_MS + 50);
        return;
      }
      case "presence": {
        const user = this.users.get(event.userId);
        if (user) {
          this.users.set(event.userId, {
            ...user,
            status: event.status,
            statusText: event.statusText,
            lastSeenAt: event.lastSeenAt ?? undefined,
          });
          this.emit();
        }
        return;
      }
      case "read": {
        const members = this.members.get(event.conversationId);
        const member = members?.find((m) => m.userId === event.userId);
        if (member && event.seq > member.readSeq) member.readSeq = event.seq;
        const conversation = this.conversation(event.conversationId);
        if (conversation && event.userId === this.me?.id && event.seq > conversation.readSeq) {
          conversation.readSeq = event.seq;
          conversation.unreadCount = Math.max(0, conversation.lastSeq - event.seq);
          if (conversation.unreadCount === 0) conversation.mentionCount = 0;
        }
        this.emit();
        return;
      }
      case "member.added":
        if (this.me && event.userIds.includes(this.me.id)) this.changeInvitations({ type: "joined", conversationId: event.conversationId });
        void this.loadMembers(event.conversationId);
        void this.api
          .conversation(event.conversationId)
          .then((c) => this.upsertConversation(c))
          .catch(() => {});
        return;
      case "member.role":
        void this.loadMembers(event.conversationId);
        void this.api
          .conversation(event.conversationId)
          .then((c) => this.upsertConversation(c))
          .catch(() => {});
        return;
      case "member.removed":
        if (this.me && event.userIds.includes(this.me.id)) return this.forgetConversation(event.conversationId);
        void this.loadMembers(event.conversationId);
        return;
      case "conversation.created":
        this.upsertConversation(event.conversation);
        if (event.conversation.type === "direct") void this.loadMembers(event.conversation.id, true);
        return;
      case "conversation.updated": {
        // Only the fields every member shares (no role, read position or counts): merged into the
        // conversation held, or, for one not held, the whole conversation read.
        const held = this.conversation(event.conversation.id);
        if (held) this.upsertConversation({ ...held, ...event.conversation });
        else
          void this.api
            .conversation(event.conversation.id)
            .then((c) => this.upsertConversation(c))
            .catch(() => {});
        if (event.conversation.type === "direct") void this.loadMembers(event.conversation.id, true);
        return;
      }
      case "conversation.deleted":
        return this.forgetConversation(event.conversationId);
      case "reaction.added":
      case "reaction.removed":
        return this.reactionEvent(event);
      case "member.muted":
        return this.setMute(event.conversationId, event.userId, event.until);
      case "member.unmuted":
        return this.setMute(event.conversationId, event.userId, null);
      case "member.banned":
        if (event.userId === this.me?.id) return this.forgetConversation(event.conversationId);
        this.setMute(event.conversationId, event.userId, null);
        if (this.bans.has(event.conversationId)) void this.loadBans(event.conversationId);
        return;
      case "invitation.new":
        this.wantUsers([event.invitation.invitedBy]);
        return this.changeInvitations({ type: "new", invitation: event.invitation });
      case "message.pinned":
        // The pins read again: newest pin first, each message as I read it.
        if (this.pins.has(event.conversationId)) void this.loadPins(event.conversationId);
        return;
      case "message.unpinned":
        return this.dropPin(event.conversationId, event.messageId);
      default:
        return;
    }
  }

  forgetConversation(id: string) {
    this.conversations = this.conversations.filter((c) => c.id !== id);
    this.timelines.delete(id);
    this.members.delete(id);
    this.notificationSettings.delete(id);
    this.pins.delete(id);
    this.mutes.delete(id);
    this.slowUntil.delete(id);
    this.bans.delete(id);
    for (const [parentId, thread] of this.threads) if (thread.conversationId === id) this.threads.delete(parentId);
    for (const [draft, queue] of this.drafts) {
      if (draft !== id && !draft.startsWith(`${id}/`)) continue;
      for (const upload of queue) this.putting.get(upload.key)?.abort();
      this.drafts.delete(draft);
    }
    if (this.openId === id) void this.open(null);
    this.emit();
  }
}
