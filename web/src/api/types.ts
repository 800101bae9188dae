// The shapes of the HTTP API, from `openapi.yaml` through the generated `schema.d.ts` (`npm run
// api-types`; a test fails when that file is not current). The names are the client's own; each is an
// alias of the schema that the routes answer with, so a change to `openapi.yaml` is a type error here
// or where the client uses the type, in `tsc --noEmit`.

import type { components, operations } from "./schema";

type Schemas = components["schemas"];

export type UserStatus = Schemas["Presence"];
export type User = Schemas["User"];
/** Register, log in, wallet verify. */
export type AuthReply = Schemas["SignedIn"];
export type RefreshReply = Schemas["Tokens"];
export type WalletChallenge = Schemas["WalletChallenge"];
export type Session = Schemas["Session"];
/** `url` is a 15-minute download link (on the HTTP answers' attachments and on `GET`), absent from events. */
export type Attachment = Schemas["Attachment"];
/** `POST /conversations/{id}/attachments`: `PUT` the bytes to `uploadUrl` with `uploadHeaders` before `expiresAt`. */
export type ReservedUpload = Schemas["AttachmentUpload"];
/**
 * A message as the events carry it. The HTTP routes answer with a `ReadMessage` or a `SentMessage`,
 * which are this and more (`myReactions`, attachments' `url`).
 */
export type Message = Schemas["Message"];
export type Role = Schemas["Role"];
/** A conversation as the caller sees it. The HTTP routes answer with a `ReadConversation` (one of these). */
export type Conversation = Schemas["Conversation"];
/** What `conversation.updated` carries: a `Conversation` without the per-member fields. */
export type SharedConversation = Schemas["SharedConversation"];
export type Member = Schemas["Member"];
export type Block = Schemas["Block"];
export type ApiErrorBody = Schemas["Error"];
/**
 * `GET /sync`'s answer: the conversations changed since the token (each with its messages created or
 * changed since, `limited` when there were more), the ones `removed` for the caller, and `next`.
 */
export type SyncAnswer = Schemas["SyncAnswer"];
/** One changed conversation of a `SyncAnswer`: its view, and its messages ascending by `seq`. */
export type SyncedConversation = SyncAnswer["conversations"][number];

/** A device registered for push notifications, as the server lists it (endpoints and tokens not echoed). */
export type PushDevice = Schemas["PushSubscription"];
/** `POST /users/me/push-subscriptions` for a browser: its `PushSubscription.toJSON()` and `type: "webpush"`. */
export type WebPushSubscriptionInput = Extract<Schemas["PushSubscriptionInput"], { type: "webpush" }>;
export type NotificationLevel = Schemas["NotificationLevel"];
/** A conversation's push settings for the caller: `mutedUntil` null when not muted. */
export type NotificationSettings = Schemas["NotificationSettings"];

/** Who may put me into a group: `nobody` turns an add into an invitation (my own profile only). */
export type WhoCanAddMe = Schemas["WhoCanAddMe"];
/** An invitation to a group, pending my answer (`GET /users/me/invitations`, `invitation.new`). */
export type Invitation = Schemas["Invitation"];
/** A group's invite link; `maxUses` null is no limit. */
export type InviteLink = Schemas["InviteLink"];
export type ReportReason = Schemas["ReportReason"];
export type ReportStatus = Schemas["ReportStatus"];
/** A report of a message or a member, as the conversation's owner and admins read it. */
export type Report = Schemas["Report"];

/** A page of a list route (`ConversationPage`, `MessagePage`, ...). */
export interface Page<T> {
  items: T[];
  nextCursor: Schemas["NextCursor"];
}

/** An operation of `openapi.yaml`, by its `operationId`. */
export type OperationId = keyof operations;

type JsonBody<Body> = Body extends { content: { "application/json": infer Json } } ? Json : undefined;

/**
 * The JSON body an operation takes (`undefined` for one without a body; the body or `undefined` for one
 * whose body is optional, as `PUT .../bans/{userId}`).
 */
export type RequestBody<Op extends OperationId> = operations[Op] extends { requestBody: infer Body }
  ? JsonBody<Body>
  : operations[Op] extends { requestBody?: infer Body }
    ? JsonBody<NonNullable<Body>> | undefined
    : undefined;

type Success = 200 | 201 | 204;

/** The JSON body of an operation's success answer (`undefined` for `204 No Content`). */
export type Reply<Op extends OperationId> = {
  [Status in Success & keyof operations[Op]["responses"]]: operations[Op]["responses"][Status] extends {
    content: { "application/json": infer Body };
  }
    ? Body
    : undefined;
}[Success & keyof operations[Op]["responses"]];

/** A ban of a group (`GET /conversations/{id}/bans`). */
export type Ban = Reply<"bans-list">["items"][number];

// WebSocket frames are asyncapi.yaml's, which openapi-typescript does not read: hand-written, from
// the schema types above where the events carry the same objects.

/** Server-to-client WebSocket frames (asyncapi.yaml; docs/API-GUIDE.md "Real time over the WebSocket"). */
export type ServerEvent =
  | { type: "message.new" | "message.updated" | "message.deleted"; message: Message }
  | { type: "typing"; conversationId: string; userId: string }
  | { type: "presence"; userId: string; status: UserStatus; statusText?: string; lastSeenAt: string | null }
  | { type: "member.added" | "member.removed"; conversationId: string; userIds: string[] }
  | { type: "member.role"; conversationId: string; userId: string; role: Role }
  | { type: "conversation.created"; conversation: Conversation }
  | { type: "conversation.updated"; conversation: SharedConversation }
  | { type: "conversation.deleted"; conversationId: string }
  | { type: "read"; conversationId: string; userId: string; messageId: string; seq: number }
  | { type: "reaction.added" | "reaction.removed"; conversationId: string; messageId: string; userId: string; reaction: string }
  | { type: "member.muted"; conversationId: string; userId: string; until: string }
  | { type: "member.unmuted" | "member.banned"; conversationId: string; userId: string }
  | { type: "invitation.new"; invitation: Invitation }
  | { type: "message.pinned" | "message.unpinned"; conversationId: string; messageId: string }
  | { type: "batch"; events: ServerEvent[] }
  | { type: "ack"; clientMessageId?: string; message?: Message }
  | { type: "pong"; at: string }
  | { type: "error"; error: { code: string; message: string } };
