// The shapes of API.md (v1.1), for the routes the backend serves today. Hand-written: there is no
// OpenAPI document yet; when there is, these should be generated from it or checked against it.

export type UserStatus = "online" | "away" | "busy" | "offline";

export interface User {
  id: string;
  username: string;
  displayName: string;
  walletAddress?: string;
  status: UserStatus;
  statusText?: string;
  lastSeenAt?: string;
  createdAt: string;
}

export interface AuthReply {
  user: User;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface RefreshReply {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface WalletChallenge {
  message: string;
  expiresAt: string;
}

export interface Session {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  userAgent?: string;
  current: boolean;
}

/** API.md "Attachments": `url` is a 15-minute download link (on messages' attachments and on `GET`). */
export interface Attachment {
  id: string;
  conversationId: string;
  fileName: string;
  contentType: string;
  size: number;
  createdAt: string;
  url?: string;
}

/** `POST /conversations/{id}/attachments`: `PUT` the bytes to `uploadUrl` with `uploadHeaders` before `expiresAt`. */
export interface ReservedUpload {
  attachment: Attachment;
  uploadUrl: string;
  uploadHeaders: Record<string, string>;
  expiresAt: string;
}

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  body: string;
  encrypted: boolean;
  createdAt: string;
  editedAt?: string;
  deleted: boolean;
  /** Set on a thread reply: the thread's first message (never itself a reply). */
  parentMessageId?: string;
  /** Replies in this message's thread (not counting deleted ones), and when the newest was sent. */
  replyCount: number;
  lastReplyAt?: string;
  /** User ids the message mentions (members of the conversation). */
  mentions: string[];
  /** Reaction to how many people reacted with it (only reactions with a count above 0). */
  reactions: Record<string, number>;
  /** The reader's own reactions: present on what a caller reads, absent from events. */
  myReactions?: string[];
  /** Files sent with the message (none on a deleted one). */
  attachments?: Attachment[];
}

export type Role = "owner" | "admin" | "member";

export interface Conversation {
  id: string;
  type: "direct" | "group";
  name?: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  lastMessage?: Message;
  lastSeq: number;
  memberCount: number;
  unreadCount: number;
  mentionCount: number;
  readSeq: number;
  myRole: Role;
}

export interface Member {
  userId: string;
  role: Role;
  joinedAt: string;
  readSeq: number;
}

export interface Block {
  userId: string;
  createdAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown[] };
  requestId?: string;
}

/** Server-to-client WebSocket frames (API.md "WebSocket"). */
export type ServerEvent =
  | { type: "message.new" | "message.updated" | "message.deleted"; message: Message }
  | { type: "typing"; conversationId: string; userId: string }
  | { type: "presence"; userId: string; status: UserStatus; statusText?: string; lastSeenAt?: string }
  | { type: "member.added" | "member.removed"; conversationId: string; userIds: string[] }
  | { type: "member.role"; conversationId: string; userId: string; role: Role }
  | { type: "conversation.created" | "conversation.updated"; conversation: Conversation }
  | { type: "conversation.deleted"; conversationId: string }
  | { type: "read"; conversationId: string; userId: string; messageId: string; seq: number }
  | { type: "reaction.added" | "reaction.removed"; conversationId: string; messageId: string; userId: string; reaction: string }
  | { type: "batch"; events: ServerEvent[] }
  | { type: "ack"; clientMessageId?: string; message?: Message }
  | { type: "pong"; at: string }
  | { type: "error"; error: { code: string; message: string } };
