// Messages for the state tests: two users and a message per `seq`, shaped as the HTTP API answers
// them (threads.test.ts keeps its own: its event copies carry no `myReactions`).
import type { Message } from "../src/api/types";

export const ME = "01HZZZZZZZZZZZZZZZZZZZZZME";
export const YOU = "01HZZZZZZZZZZZZZZZZZZZZYOU";
export const id = (seq: number) => `M${String(seq).padStart(25, "0")}`;
export const at = (seq: number) => new Date(1_700_000_000_000 + seq * 1000).toISOString();

export function msg(seq: number, change: Partial<Message> = {}): Message {
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
    myReactions: [],
    ...change,
  };
}
