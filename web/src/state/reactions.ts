// Reactions as the client holds them: pure functions, unit-tested.
// - `reactions` counts everyone's; `myReactions` (only on reads) says which are mine.
// - `reaction.added` / `.removed` are at-least-once: my own are applied through `myReactions` (so my
//   optimistic toggle and its event count once), and everyone's through a ledger of the last change
//   per (message, user, reaction), so a repeated event changes nothing.

import type { Message } from "../api/types";

export interface ReactionEvent {
  type: "reaction.added" | "reaction.removed";
  conversationId: string;
  messageId: string;
  userId: string;
  reaction: string;
}

/** A few common ones for the picker (any single emoji or shortcode is accepted by the API). */
export const COMMON_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/** The message after one reaction event (`myId`: who I am, so my own events move `myReactions`). */
export function applyReaction(message: Message, event: ReactionEvent, myId?: string): Message {
  if (message.deleted || message.id !== event.messageId) return message;
  const added = event.type === "reaction.added";
  const mine = message.myReactions ?? [];
  let myReactions = message.myReactions;
  if (event.userId === myId) {
    if (mine.includes(event.reaction) === added) return message;
    myReactions = added ? [...mine, event.reaction] : mine.filter((r) => r !== event.reaction);
  }
  const reactions = { ...(message.reactions ?? {}) };
  const count = (reactions[event.reaction] ?? 0) + (added ? 1 : -1);
  if (count > 0) reactions[event.reaction] = count;
  else delete reactions[event.reaction];
  const next: Message = { ...message, reactions };
  if (myReactions !== undefined) next.myReactions = myReactions;
  return next;
}

/** Did I react with `reaction`? */
export function reacted(message: Message, reaction: string): boolean {
  return (message.myReactions ?? []).includes(reaction);
}

/** The chips to show: every reaction with its count, mine marked, in a stable order (first seen first). */
export function chips(message: Message): { reaction: string; count: number; mine: boolean }[] {
  return Object.entries(message.reactions ?? {})
    .filter(([, count]) => count > 0)
    .map(([reaction, count]) => ({ reaction, count, mine: reacted(message, reaction) }));
}

/** Remembers the last change per (message, user, reaction) and spots events that repeat it. */
export class ReactionLedger {
  private last = new Map<string, boolean>();

  /** True when `event` repeats the last change seen for its key (then it is to be ignored). */
  repeat(event: ReactionEvent): boolean {
    const key = `${event.messageId}\u0000${event.userId}\u0000${event.reaction}`;
    const added = event.type === "reaction.added";
    if (this.last.get(key) === added) return true;
    this.last.set(key, added);
    return false;
  }

  clear() {
    this.last.clear();
  }
}
