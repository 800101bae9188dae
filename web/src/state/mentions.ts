// Mentions in the composer and in message bodies: `@username` tokens. Pure functions, unit-tested.

export interface Mentionable {
  id: string;
  username: string;
  displayName?: string;
}

const WORD = /[a-z0-9_.-]/i;

/** The `@` word being typed at `caret` (its start and what follows the `@`), or null. */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  let i = caret;
  while (i > 0 && WORD.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== "@") return null;
  const start = i - 1;
  if (start > 0 && !/\s|[(\[{"']/.test(text[start - 1])) return null; // an e-mail address, not a mention
  return { start, query: text.slice(i, caret).toLowerCase() };
}

/** Candidates whose username or display name starts with `query` (not me), at most `limit`. */
export function candidates(people: Mentionable[], query: string, myId?: string, limit = 6): Mentionable[] {
  const q = query.toLowerCase();
  return people
    .filter((p) => p.id !== myId)
    .filter(
      (p) =>
        p.username.toLowerCase().startsWith(q) ||
        (p.displayName ?? "").toLowerCase().split(/\s+/).some((w) => w.startsWith(q)),
    )
    .slice(0, limit);
}

/** `text` with the `@` word at `start..caret` replaced by `@username `; and where the caret goes. */
export function insertMention(text: string, start: number, caret: number, username: string): { text: string; caret: number } {
  const insert = `@${username} `;
  const rest = text.slice(caret).replace(/^[a-z0-9_.-]*/i, "").replace(/^ /, "");
  return { text: text.slice(0, start) + insert + rest, caret: start + insert.length };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");

/** The ids of the people `@username`-mentioned in `text` (each once). */
export function mentionedIds(text: string, people: Mentionable[]): string[] {
  const ids: string[] = [];
  for (const p of people) {
    const re = new RegExp(`(^|[^a-z0-9_.@-])@${escape(p.username)}(?![a-z0-9_-]|\\.[a-z0-9_-])`, "i");
    if (re.test(text) && !ids.includes(p.id)) ids.push(p.id);
  }
  return ids.slice(0, 50);
}

/** A body cut into text and mention parts (`userId` set on the `@username` of a mentioned person). */
export function splitMentions(body: string, mentioned: Mentionable[]): { text: string; userId?: string }[] {
  if (mentioned.length === 0) return [{ text: body }];
  const byName = new Map(mentioned.map((p) => [p.username.toLowerCase(), p.id]));
  const names = [...byName.keys()].sort((a, b) => b.length - a.length).map(escape);
  const re = new RegExp(`@(${names.join("|")})(?![a-z0-9_-]|\\.[a-z0-9_-])`, "gi");
  const parts: { text: string; userId?: string }[] = [];
  let at = 0;
  for (const match of body.matchAll(re)) {
    const i = match.index ?? 0;
    if (i > 0 && /[a-z0-9_.@-]/i.test(body[i - 1])) continue;
    if (i > at) parts.push({ text: body.slice(at, i) });
    parts.push({ text: match[0], userId: byName.get(match[1].toLowerCase()) });
    at = i + match[0].length;
  }
  if (at < body.length) parts.push({ text: body.slice(at) });
  return parts;
}
