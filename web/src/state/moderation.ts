// Moderation as the client shows it: pure functions, unit-tested.
// - Ranks: the owner acts on admins and plain members, an admin on plain members; nobody on the owner
//   or on themself, and only in groups (the server enforces it; the client hides what cannot work).
// - Slow mode: a plain member's messages at least `slowModeSeconds` apart (owner and admins exempt);
//   the composer counts down from a send, or from a `429`'s `Retry-After`.
// - A mute shows from `member.muted` / `member.unmuted`, or from a `403` whose message says until when.

import type { Conversation, Role } from "../api/types";

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

/** Can someone of `myRole` mute, ban or remove a member of `targetRole` (`self`: it is me)? */
export function canModerate(myRole: Role | undefined, targetRole: Role, self: boolean, group: boolean): boolean {
  if (!group || self || !myRole) return false;
  return RANK[myRole] > 0 && RANK[targetRole] < RANK[myRole];
}

/** Owner and admins of a group: invite links, bans, reports, slow mode. */
export function isModerator(conversation: Pick<Conversation, "type" | "myRole">): boolean {
  return conversation.type === "group" && RANK[conversation.myRole] > 0;
}

/** Pins: the owner and admins in a group, either member in a direct conversation. */
export function canPin(conversation: Pick<Conversation, "type" | "myRole">): boolean {
  return conversation.type === "direct" || RANK[conversation.myRole] > 0;
}

/** Does slow mode hold me back in this conversation (on, and I am a plain member)? */
export function slowModeApplies(conversation: Pick<Conversation, "type" | "myRole" | "slowModeSeconds">): boolean {
  return conversation.type === "group" && (conversation.slowModeSeconds ?? 0) > 0 && conversation.myRole === "member";
}

/** When I may send again after a send at `sentAt` (epoch ms); null when slow mode does not hold me back. */
export function nextSendAt(conversation: Pick<Conversation, "type" | "myRole" | "slowModeSeconds">, sentAt: number): number | null {
  return slowModeApplies(conversation) ? sentAt + conversation.slowModeSeconds * 1000 : null;
}

/** The end of a wait a `429` asked for: `Retry-After` seconds from `now`, or `fallbackSecs` without one. */
export function retryAt(retryAfterSecs: number | undefined, now: number, fallbackSecs: number): number {
  const secs = retryAfterSecs !== undefined && Number.isFinite(retryAfterSecs) && retryAfterSecs > 0 ? retryAfterSecs : fallbackSecs;
  return now + Math.max(0, secs) * 1000;
}

/** Whole seconds left until `until` (rounded up; 0 once it has passed or when there is none). */
export function secondsLeft(until: number | null | undefined, now: number): number {
  if (until === null || until === undefined || !Number.isFinite(until)) return 0;
  return Math.max(0, Math.ceil((until - now) / 1000));
}

/** A wait as a person reads it: `45 s`, `2 min 5 s`, `1 h 3 min`. */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const rest = s % 60;
    return `${Math.floor(s / 60)} min${rest ? ` ${rest} s` : ""}`;
  }
  const minutes = Math.floor((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${minutes ? ` ${minutes} min` : ""}`;
}

/** Slow-mode choices for the owner and admins (seconds; 0 is off). */
export const SLOW_MODES: { seconds: number; label: string }[] = [
  { seconds: 0, label: "Off" },
  { seconds: 10, label: "10 seconds" },
  { seconds: 30, label: "30 seconds" },
  { seconds: 60, label: "1 minute" },
  { seconds: 300, label: "5 minutes" },
  { seconds: 900, label: "15 minutes" },
  { seconds: 3600, label: "1 hour" },
];

/** A slow-mode interval in words (one of the choices, or its seconds). */
export function slowModeLabel(seconds: number): string {
  return SLOW_MODES.find((m) => m.seconds === seconds)?.label ?? formatWait(seconds);
}

/** Mute lengths offered to the owner and admins. */
export const MUTE_DURATIONS: { seconds: number; label: string }[] = [
  { seconds: 3600, label: "1 hour" },
  { seconds: 8 * 3600, label: "8 hours" },
  { seconds: 24 * 3600, label: "1 day" },
  { seconds: 7 * 24 * 3600, label: "1 week" },
];

/**
 * Until when a refusal says I am muted ("You are muted in this conversation until 2025-01-01T10:00:00.000Z."),
 * or null when it says nothing of a mute.
 */
export function mutedUntilFrom(message: string): Date | null {
  if (!/\bmuted\b/i.test(message)) return null;
  const at = message.match(/\buntil\s+(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))/i)?.[1];
  if (!at) return null;
  const until = new Date(at);
  return Number.isNaN(until.getTime()) ? null : until;
}

/** A mute held as an RFC 3339 end: the end while it lasts, else null. */
export function activeUntil(until: string | undefined, now: number): Date | null {
  if (!until) return null;
  const at = new Date(until);
  return at.getTime() > now ? at : null;
}

export const REPORT_REASONS: { value: "spam" | "abuse" | "other"; label: string }[] = [
  { value: "spam", label: "Spam" },
  { value: "abuse", label: "Abuse or harassment" },
  { value: "other", label: "Something else" },
];

export const REPORT_NOTE_CHARS = 1000;
