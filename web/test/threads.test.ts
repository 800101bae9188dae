import { describe, expect, it } from "vitest";

import type { Message } from "../src/api/types";
import { candidates, insertMention, mentionedIds, mentionQuery, splitMentions } from "../src/state/mentions";
import { applyReaction, chips, ReactionLedger, type ReactionEvent } from "../src/state/reactions";
import {
  addPending,
  combine,
  emptyThread,
  emptyTimeline,
  loadLatest,
  loadReplies,
  merge,
  mergeThread,
  topLevel,
} from "../src/state/timeline";

const ME = "01HZZZZZZZZZZZZZZZZZZZZZME";
const YOU = "01HZZZZZZZZZZZZZZZZZZZZYOU";
const id = (seq: number) => `M${String(seq).padStart(25, "0")}`;
const at = (seq: number) => new Date(1_700_000_000_000 + seq * 1000).toISOString();

function msg(seq: number, change: Partial<Message> = {}): Message {
  return {
    id: id(seq),
    conversationId: "C",
    seq,
    senderId: YOU,
    clientMessageId: `c${seq}`,
    body: `message ${seq}`,
    encrypted: false,
    createdAt: at(seq),
    deleted: false,
    replyCount: 0,
    mentions: [],
    attachments: [],
    reactions: {},
    ...change,
  };
}
const reply = (seq: number, parent: number, change: Partial<Message> = {}) => msg(seq, { parentMessageId: id(parent), ...change });

function reaction(type: "added" | "removed", userId: string, r: string, messageSeq = 1): ReactionEvent {
  return { type: `reaction.${type}`, conversationId: "C", messageId: id(messageSeq), userId, reaction: r };
}

describe("reactions from events", () => {
  it("count everyone's, and a repeated event changes nothing", () => {
    const ledger = new ReactionLedger();
    let m = msg(1, { myReactions: [] });
    const events = [
      reaction("added", YOU, "👍"),
      reaction("added", YOU, "👍"), // redelivered
      reaction("added", "U3", "👍"),
      reaction("added", "U3", "🎉"),
      reaction("removed", "U3", "👍"),
      reaction("removed", "U3", "👍"), // redelivered
    ];
    for (const e of events) if (!ledger.repeat(e)) m = applyReaction(m, e, ME);
    expect(m.reactions).toEqual({ "👍": 1, "🎉": 1 });
    expect(m.myReactions).toEqual([]);
    // The last one taken back: the chip goes.
    for (const e of [reaction("removed", "U3", "🎉"), reaction("removed", "U3", "🎉")]) if (!ledger.repeat(e)) m = applyReaction(m, e, ME);
    expect(chips(m)).toEqual([{ reaction: "👍", count: 1, mine: false }]);
  });

  it("mine move myReactions, once: the optimistic toggle and its event count one", () => {
    let m = msg(1, { reactions: { "👍": 1 }, myReactions: [] });
    const mine = reaction("added", ME, "👍");
    m = applyReaction(m, mine, ME); // optimistic
    expect(m.reactions).toEqual({ "👍": 2 });
    expect(m.myReactions).toEqual(["👍"]);
    const again = applyReaction(m, mine, ME); // my event arrives
    expect(again).toBe(m);
    expect(chips(m)).toEqual([{ reaction: "👍", count: 2, mine: true }]);
    // From another of my devices: taken back, then the event again.
    m = applyReaction(m, reaction("removed", ME, "👍"), ME);
    m = applyReaction(m, reaction("removed", ME, "👍"), ME);
    expect(m.reactions).toEqual({ "👍": 1 });
    expect(m.myReactions).toEqual([]);
  });

  it("a message from an event (no myReactions) takes my reaction as new", () => {
    const m = applyReaction(msg(1), reaction("added", ME, "❤️"), ME);
    expect(m.reactions).toEqual({ "❤️": 1 });
    expect(m.myReactions).toEqual(["❤️"]);
  });

  it("a deleted message keeps none", () => {
    const m = msg(1, { deleted: true, body: "" });
    expect(applyReaction(m, reaction("added", YOU, "👍"), ME)).toBe(m);
  });
});

describe("copies of one message", () => {
  it("a read replaces counts and my reactions; a redelivered event copy does not reset them", () => {
    const held = msg(1, { reactions: { "👍": 3 }, myReactions: ["👍"], replyCount: 2, lastReplyAt: at(5) });
    expect(combine(held, msg(1))).toBe(held); // the original message.new again
    const read = combine(held, msg(1, { reactions: { "👍": 2 }, myReactions: [], replyCount: 1, lastReplyAt: at(5) }));
    expect(read).toMatchObject({ reactions: { "👍": 2 }, myReactions: [], replyCount: 1 });
  });

  it("an edit from an event brings its counts and keeps my reactions", () => {
    const held = msg(1, { reactions: { "👍": 1 }, myReactions: ["👍"] });
    const edited = combine(held, msg(1, { body: "new", editedAt: at(9), reactions: { "👍": 1, "🎉": 1 } }));
    expect(edited).toMatchObject({ body: "new", reactions: { "👍": 1, "🎉": 1 }, myReactions: ["👍"] });
  });

  it("a delete clears reactions whatever comes later", () => {
    let t = loadLatest(emptyTimeline(), [msg(1, { reactions: { "👍": 1 }, myReactions: ["👍"] })], null);
    t = merge(t, [msg(1, { deleted: true, body: "" })]);
    t = merge(t, [msg(1, { reactions: { "👍": 4 }, myReactions: ["👍"] })]);
    expect(t.messages[0]).toMatchObject({ deleted: true, reactions: {}, myReactions: [] });
  });
});

describe("reply counts", () => {
  const parentOf = (t: { messages: Message[] }) => t.messages.find((m) => m.id === id(1))!;

  it("a new reply counts once on its parent, however often it arrives", () => {
    let t = loadLatest(emptyTimeline(), [msg(2), msg(1)], null);
    t = merge(t, [reply(3, 1)]);
    t = merge(t, [reply(3, 1)]);
    t = merge(t, [reply(4, 1), reply(4, 1)]);
    expect(parentOf(t)).toMatchObject({ replyCount: 2, lastReplyAt: at(4) });
    expect(topLevel(t.messages).map((m) => m.seq)).toEqual([1, 2]);
    expect(t.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  it("replies read with their parent, or older than its last reply, are already counted", () => {
    // A page with the parent and its replies (the parent read with them counted).
    let t = loadLatest(emptyTimeline(), [reply(3, 1), reply(2, 1), msg(1, { replyCount: 2, lastReplyAt: at(3) })], null);
    expect(parentOf(t).replyCount).toBe(2);
    // The parent held with a count; an older reply shows up (a thread page, a late event).
    t = loadLatest(emptyTimeline(), [msg(1, { replyCount: 2, lastReplyAt: at(3) })], null);
    t = merge(t, [reply(2, 1), reply(3, 1)]);
    expect(parentOf(t).replyCount).toBe(2);
    t = merge(t, [reply(4, 1)]); // a catch-up page after a reconnect
    expect(parentOf(t)).toMatchObject({ replyCount: 3, lastReplyAt: at(4) });
  });

  it("a held reply deleted takes its count back, once", () => {
    let t = loadLatest(emptyTimeline(), [msg(1)], null);
    t = merge(t, [reply(2, 1)]);
    t = merge(t, [reply(2, 1, { deleted: true, body: "" })]);
    t = merge(t, [reply(2, 1, { deleted: true, body: "" })]);
    expect(parentOf(t).replyCount).toBe(0);
  });

  it("a thread counts live replies on its parent, settles my optimistic reply, and pages count nothing", () => {
    let thread = emptyThread("C", id(1));
    thread = { ...thread, parent: msg(1, { replyCount: 1, lastReplyAt: at(2), myReactions: [] }) };
    thread = loadReplies(thread, [reply(2, 1)], "next");
    expect(thread.parent?.replyCount).toBe(1);
    expect(thread.replies.hasOlder).toBe(true);
    thread = {
      ...thread,
      replies: addPending(thread.replies, {
        clientMessageId: "mine",
        body: "hi",
        createdAt: at(3),
        state: "sending",
        attempts: 0,
        parentMessageId: id(1),
      }),
    };
    const stored = reply(3, 1, { senderId: ME, clientMessageId: "mine" });
    thread = mergeThread(thread, [stored, msg(4)], ME); // the send's reply (msg 4 is no reply of this thread)
    thread = mergeThread(thread, [stored], ME); // and its event
    expect(thread.replies.pending).toEqual([]);
    expect(thread.replies.messages.map((m) => m.seq)).toEqual([2, 3]);
    expect(thread.parent).toMatchObject({ replyCount: 2, lastReplyAt: at(3) });
    // The next page (older than the parent's last reply) adds replies but no counts.
    thread = loadReplies(thread, [reply(2, 1), reply(3, 1, { senderId: ME, clientMessageId: "mine" })], null);
    expect(thread.parent?.replyCount).toBe(2);
    expect(thread.replies.hasOlder).toBe(false);
    expect(mergeThread(thread, [msg(5)], ME)).toBe(thread);
  });
});

describe("mentions", () => {
  const people = [
    { id: ME, username: "me", displayName: "Me Myself" },
    { id: YOU, username: "bob_1", displayName: "Bob Builder" },
    { id: "U3", username: "bobby", displayName: "Robert" },
  ];

  it("the @ word at the caret offers members, not me, by username or name", () => {
    expect(mentionQuery("hi @bo", 6)).toEqual({ start: 3, query: "bo" });
    expect(mentionQuery("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionQuery("mail a@bo", 9)).toBeNull();
    expect(mentionQuery("no mention", 10)).toBeNull();
    expect(candidates(people, "bo", ME).map((p) => p.username)).toEqual(["bob_1", "bobby"]);
    expect(candidates(people, "rob", ME).map((p) => p.username)).toEqual(["bobby"]);
    expect(candidates(people, "", ME)).toHaveLength(2);
  });

  it("picking one completes the word", () => {
    expect(insertMention("hi @bo", 3, 6, "bob_1")).toEqual({ text: "hi @bob_1 ", caret: 10 });
    expect(insertMention("hi @bo there", 3, 6, "bobby")).toEqual({ text: "hi @bobby there", caret: 10 });
  });

  it("the ids sent are those whose @username is in the text", () => {
    expect(mentionedIds("ping @bobby and @bob_1, thanks", people)).toEqual([YOU, "U3"]);
    expect(mentionedIds("ping @bob", people)).toEqual([]);
    expect(mentionedIds("mail bob@bobby.com", people)).toEqual([]);
    expect(mentionedIds("@bobby.", people)).toEqual(["U3"]);
  });

  it("bodies are cut into text and highlighted mentions", () => {
    expect(splitMentions("hey @Bobby, see @bob_1.", people.slice(1))).toEqual([
      { text: "hey " },
      { text: "@Bobby", userId: "U3" },
      { text: ", see " },
      { text: "@bob_1", userId: YOU },
      { text: "." },
    ]);
    expect(splitMentions("plain @bobby", [])).toEqual([{ text: "plain @bobby" }]);
  });
});
