// The bytes of a push subscription: the server's VAPID key (base64url) as `applicationServerKey`, the
// comparison that tells a key rotation, and the body that registers a subscription. Pure (unit-tested).

import type { WebPushSubscriptionInput } from "../api/types";

/** Base64url (padded or not; plain base64 is read too) as bytes. Throws on other characters. */
export function urlBase64ToUint8Array(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes as base64url without padding. */
export function uint8ArrayToUrlBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Was a subscription made with the server's current key? `held` is the subscription's
 * `options.applicationServerKey` (null when the browser does not say: taken as the same, nothing to
 * compare); `serverKey` is `GET /push/vapid-public-key`'s base64url. False: the key was rotated, and the
 * subscription must be made again.
 */
export function sameServerKey(held: ArrayBuffer | ArrayBufferView | null | undefined, serverKey: string): boolean {
  if (!held) return true;
  const a = held instanceof ArrayBuffer ? new Uint8Array(held) : new Uint8Array(held.buffer, held.byteOffset, held.byteLength);
  let b: Uint8Array;
  try {
    b = urlBase64ToUint8Array(serverKey);
  } catch {
    return false;
  }
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** `POST /users/me/push-subscriptions`'s body from `PushSubscription.toJSON()`. Throws when a part is missing. */
export function subscriptionInput(json: PushSubscriptionJSON): WebPushSubscriptionInput {
  const { endpoint, keys } = json;
  if (!endpoint || !keys?.p256dh || !keys.auth) throw new Error("The browser gave an incomplete push subscription.");
  return { type: "webpush", endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
}
