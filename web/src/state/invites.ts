// Invitations and invite links as the client holds them: pure functions, unit-tested.
// - An invite link is the app's own URL with the route `#/join/<code>` (the app routes by the hash:
//   `#/c/<conversationId>` opens a conversation); opening it while signed in offers to join.
// - Pending invitations (to people whose `whoCanAddMe` is `nobody`) are a list, newest first, changed by
//   a load, `invitation.new` (at least once: a repeat changes nothing), an answer (accepted or
//   declined) and a join some other way (the invitations to that group are done with).

import type { Invitation } from "../api/types";

/** What an invite code looks like (the server makes 12 letters and digits; a little leeway here). */
const CODE = /^[A-Za-z0-9]{4,64}$/;

/** The link to share for an invite `code`: the page's address (no query, no hash) with `#/join/<code>`. */
export function inviteUrl(pageUrl: string, code: string): string {
  const base = pageUrl.split("#")[0].split("?")[0];
  return `${base}#/join/${encodeURIComponent(code)}`;
}

/** The invite code of a location hash `#/join/<code>`, or null for any other route. */
export function joinCodeFromHash(hash: string): string | null {
  const code = hash.match(/^#\/join\/([^/?#]+)\/?$/)?.[1];
  if (!code) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(code);
  } catch {
    return null;
  }
  return CODE.test(decoded) ? decoded : null;
}

/** An invite code from what someone pastes: a whole link (`…#/join/<code>`) or the bare code. */
export function inviteCodeFrom(input: string): string | null {
  const text = input.trim();
  if (CODE.test(text)) return text;
  const at = text.indexOf("#/join/");
  return at >= 0 ? joinCodeFromHash(text.slice(at)) : null;
}

/** The conversation id of a location hash `#/c/<id>`, or null. */
export function conversationIdFromHash(hash: string): string | null {
  return hash.match(/^#\/c\/([0-9A-Za-z]{26})$/)?.[1] ?? null;
}

export type InvitationChange =
  | { type: "loaded"; items: Invitation[] }
  | { type: "new"; invitation: Invitation }
  /** Accepted or declined (here or elsewhere). */
  | { type: "answered"; id: string }
  /** I am in the group now (accepted elsewhere, joined by a link, added). */
  | { type: "joined"; conversationId: string };

const newestFirst = (a: Invitation, b: Invitation) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0);

/** The pending invitations after one change (the same array when nothing changed). */
export function applyInvitation(list: Invitation[], change: InvitationChange): Invitation[] {
  switch (change.type) {
    case "loaded": {
      const byId = new Map<string, Invitation>();
      for (const invitation of change.items) byId.set(invitation.id, invitation);
      return [...byId.values()].sort(newestFirst);
    }
    case "new": {
      if (list.some((i) => i.id === change.invitation.id)) return list; // a repeat
      return [...list, change.invitation].sort(newestFirst);
    }
    case "answered":
      return list.some((i) => i.id === change.id) ? list.filter((i) => i.id !== change.id) : list;
    case "joined":
      return list.some((i) => i.conversation.id === change.conversationId)
        ? list.filter((i) => i.conversation.id !== change.conversationId)
        : list;
  }
}
