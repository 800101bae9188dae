import { describe, expect, it } from "vitest";

import type { Invitation } from "../src/api/types";
import { applyInvitation, conversationIdFromHash, inviteCodeFrom, inviteUrl, joinCodeFromHash } from "../src/state/invites";

describe("invite link URLs", () => {
  it("are the page's address with #/join/<code>, whatever route or query it had", () => {
    expect(inviteUrl("https://parley.example/", "Ab3dEf6hIj9k")).toBe("https://parley.example/#/join/Ab3dEf6hIj9k");
    expect(inviteUrl("https://parley.example/#/c/01HZZZZZZZZZZZZZZZZZZZZZZZ", "Ab3dEf6hIj9k")).toBe(
      "https://parley.example/#/join/Ab3dEf6hIj9k",
    );
    expect(inviteUrl("http://127.0.0.1:8080/app/?x=1#/", "Ab3dEf6hIj9k")).toBe("http://127.0.0.1:8080/app/#/join/Ab3dEf6hIj9k");
  });

  it("parse back to their code; other routes and malformed codes are no join", () => {
    const url = inviteUrl("https://parley.example/", "Ab3dEf6hIj9k");
    expect(joinCodeFromHash(new URL(url).hash)).toBe("Ab3dEf6hIj9k");
    expect(joinCodeFromHash("#/join/Ab3dEf6hIj9k/")).toBe("Ab3dEf6hIj9k");
    expect(joinCodeFromHash("#/c/01HZZZZZZZZZZZZZZZZZZZZZZZ")).toBeNull();
    expect(joinCodeFromHash("#/join/")).toBeNull();
    expect(joinCodeFromHash("#/join/abc")).toBeNull(); // too short
    expect(joinCodeFromHash("#/join/Ab3d-Ef6h")).toBeNull();
    expect(joinCodeFromHash("#/join/%E0%A4%A")).toBeNull(); // broken escape
    expect(joinCodeFromHash("")).toBeNull();
  });

  it("are taken from a pasted link or a bare code", () => {
    expect(inviteCodeFrom("  Ab3dEf6hIj9k ")).toBe("Ab3dEf6hIj9k");
    expect(inviteCodeFrom("https://parley.example/#/join/Ab3dEf6hIj9k")).toBe("Ab3dEf6hIj9k");
    expect(inviteCodeFrom("https://parley.example/#/c/01HZZZZZZZZZZZZZZZZZZZZZZZ")).toBeNull();
    expect(inviteCodeFrom("not a code!")).toBeNull();
  });

  it("and a conversation route gives its id", () => {
    expect(conversationIdFromHash("#/c/01HZZZZZZZZZZZZZZZZZZZZZZZ")).toBe("01HZZZZZZZZZZZZZZZZZZZZZZZ");
    expect(conversationIdFromHash("#/join/Ab3dEf6hIj9k")).toBeNull();
  });
});

const invitation = (id: string, conversationId: string, minute: number): Invitation => ({
  id,
  conversation: {
    id: conversationId,
    type: "group",
    name: `Group ${conversationId}`,
    createdBy: "U1",
    createdAt: "2030-01-01T00:00:00.000Z",
    updatedAt: "2030-01-01T00:00:00.000Z",
    lastSeq: 0,
    memberCount: 2,
    slowModeSeconds: 0,
  },
  invitedBy: "U1",
  createdAt: `2030-01-01T00:${String(minute).padStart(2, "0")}:00.000Z`,
});

describe("the invitation list", () => {
  it("loads newest first, without duplicates", () => {
    const list = applyInvitation([], { type: "loaded", items: [invitation("a", "G1", 1), invitation("b", "G2", 5), invitation("a", "G1", 1)] });
    expect(list.map((i) => i.id)).toEqual(["b", "a"]);
  });

  it("takes invitation.new in order, and a repeated event changes nothing", () => {
    let list = applyInvitation([], { type: "new", invitation: invitation("a", "G1", 1) });
    list = applyInvitation(list, { type: "new", invitation: invitation("c", "G3", 9) });
    list = applyInvitation(list, { type: "new", invitation: invitation("b", "G2", 5) });
    expect(list.map((i) => i.id)).toEqual(["c", "b", "a"]);
    expect(applyInvitation(list, { type: "new", invitation: invitation("b", "G2", 5) })).toBe(list);
  });

  it("drops an accepted or declined invitation, and those to a group I joined otherwise", () => {
    const list = applyInvitation([], {
      type: "loaded",
      items: [invitation("a", "G1", 1), invitation("b", "G2", 2), invitation("c", "G2", 3)],
    });
    expect(applyInvitation(list, { type: "answered", id: "a" }).map((i) => i.id)).toEqual(["c", "b"]);
    expect(applyInvitation(list, { type: "joined", conversationId: "G2" }).map((i) => i.id)).toEqual(["a"]);
    // Nothing to drop: the same list.
    expect(applyInvitation(list, { type: "answered", id: "zz" })).toBe(list);
    expect(applyInvitation(list, { type: "joined", conversationId: "G9" })).toBe(list);
  });
});
