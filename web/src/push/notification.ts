// What a push shows: the payload the server sends (docs: openapi.yaml, tag push) made into a
// notification, and the messages the service worker and the app's windows exchange. Pure, for the
// service worker (sw.ts) and the app alike, and for the unit tests.

/** A push's JSON payload. `body` is absent for an end-to-end encrypted message. */
export interface MessagePush {
  type: "message";
  conversationId: string;
  messageId: string;
  seq: number;
  senderId: string;
  title: string;
  body?: string;
}

/** What a notification's `data` holds: where a click leads. */
export interface NotificationTarget {
  conversationId: string;
  messageId: string;
}

/** The arguments of `registration.showNotification(title, options)`. */
export interface PushNotification {
  title: string;
  options: { body: string; tag?: string; data?: NotificationTarget };
}

export const APP_NAME = "Parley";
/** The text of a message whose body the push does not carry (encrypted), or of a payload not understood. */
export const NEUTRAL_BODY = "New message";

/** Service worker → window: show this conversation (after a click on its notification). */
export const OPEN_CONVERSATION = "parley.open-conversation";
/** Service worker → window, with a port for the answer: which conversation do you show (id or null)? */
export const SHOWN_CONVERSATION = "parley.shown-conversation";

export interface OpenConversationMessage {
  type: typeof OPEN_CONVERSATION;
  conversationId: string;
}

const text = (value: unknown): value is string => typeof value === "string" && value.length > 0;

/** The payload of a message push, or null when the data is not one (not JSON, another type, fields missing). */
export function parsePush(data: string | null | undefined): MessagePush | null {
  if (!data) return null;
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const p = json as Record<string, unknown>;
  if (p.type !== "message" || !text(p.conversationId) || !text(p.messageId) || !text(p.title)) return null;
  const push: MessagePush = {
    type: "message",
    conversationId: p.conversationId,
    messageId: p.messageId,
    seq: typeof p.seq === "number" ? p.seq : 0,
    senderId: typeof p.senderId === "string" ? p.senderId : "",
    title: p.title,
  };
  if (text(p.body)) push.body = p.body;
  return push;
}

/**
 * The notification for a push's data: the payload's title, its body (or `NEUTRAL_BODY`), tagged with
 * the conversation (a newer one replaces the one shown). Data not understood still shows a generic
 * notification: a push subscribed `userVisibleOnly` must show one.
 */
export function notificationFor(data: string | null | undefined): PushNotification {
  const push = parsePush(data);
  if (!push) return { title: APP_NAME, options: { body: NEUTRAL_BODY } };
  return {
    title: push.title,
    options: {
      body: push.body ?? NEUTRAL_BODY,
      tag: push.conversationId,
      data: { conversationId: push.conversationId, messageId: push.messageId },
    },
  };
}

/** A notification's `data` as a target, or null (a generic notification has none). */
export function targetOf(data: unknown): NotificationTarget | null {
  if (typeof data !== "object" || data === null) return null;
  const d = data as Record<string, unknown>;
  return text(d.conversationId) ? { conversationId: d.conversationId, messageId: text(d.messageId) ? d.messageId : "" } : null;
}

/** The app's address of a conversation (the route `AppState.signedIn` reads), from the app's root URL. */
export function conversationUrl(root: string, conversationId: string): string {
  return new URL(`#/c/${encodeURIComponent(conversationId)}`, root).href;
}
