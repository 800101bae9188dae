import { describe, expect, it } from "vitest";

import type { Role } from "../src/api/types";
import {
  activeUntil,
  canModerate,
  canPin,
  formatWait,
  isModerator,
  mutedUntilFrom,
  nextSendAt,
  retryAt,
  secondsLeft,
  slowModeApplies,
} from "../src/state/moderation";

describe("ranks: which moderation buttons show", () => {
  const roles: Role[] = ["owner", "admin", "member"];
  it("the owner acts on admins and plain members, an admin on plain members only", () => {
    const allowed = (me: Role) => roles.filter((target) => canModerate(me, target, false, true));
    expect(allowed("owner")).toEqual(["admin", "member"]);
    expect(allowed("admin")).toEqual(["member"]);
    expect(allowed("member")).toEqual([]);
  });

  it("nobody acts on the owner, on themself, or outside a group", () => {
    for (const me of roles) expect(canModerate(me, "owner", false, true)).toBe(false);
    expect(canModerate("owner", "owner", true, true)).toBe(false);
    expect(canModerate("admin", "member", true, true)).toBe(false);
    expect(canModerate("owner", "member", false, false)).toBe(false);
    expect(canModerate(undefined, "member", false, true)).toBe(false);
  });

  it("moderators are a group's owner and admins; pins also either member of a direct conversation", () => {
    expect(isModerator({ type: "group", myRole: "owner" })).toBe(true);
    expect(isModerator({ type: "group", myRole: "admin" })).toBe(true);
    expect(isModerator({ type: "group", myRole: "member" })).toBe(false);
    expect(isModerator({ type: "direct", myRole: "member" })).toBe(false);
    expect(canPin({ type: "group", myRole: "admin" })).toBe(true);
    expect(canPin({ type: "group", myRole: "member" })).toBe(false);
    expect(canPin({ type: "direct", myRole: "member" })).toBe(true);
  });
});

describe("slow mode countdown", () => {
  const group = (myRole: Role, slowModeSeconds: number) => ({ type: "group" as const, myRole, slowModeSeconds });

  it("holds back a plain member only, and only while slow mode is on", () => {
    expect(slowModeApplies(group("member", 30))).toBe(true);
    expect(slowModeApplies(group("admin", 30))).toBe(false);
    expect(slowModeApplies(group("owner", 30))).toBe(false);
    expect(slowModeApplies(group("member", 0))).toBe(false);
    expect(slowModeApplies({ type: "direct", myRole: "member", slowModeSeconds: 30 })).toBe(false);
    expect(nextSendAt(group("member", 30), 1_000)).toBe(31_000);
    expect(nextSendAt(group("owner", 30), 1_000)).toBeNull();
  });

  it("waits the Retry-After of a 429, or the interval without one", () => {
    expect(retryAt(12, 5_000, 30)).toBe(17_000);
    expect(retryAt(undefined, 5_000, 30)).toBe(35_000);
    expect(retryAt(0, 5_000, 30)).toBe(35_000);
    expect(retryAt(Number.NaN, 5_000, 30)).toBe(35_000);
  });

  it("counts whole seconds down, rounding up, to 0", () => {
    const until = retryAt(12, 100_000, 30);
    expect(secondsLeft(until, 100_000)).toBe(12);
    expect(secondsLeft(until, 100_001)).toBe(12);
    expect(secondsLeft(until, 100_999)).toBe(12);
    expect(secondsLeft(until, 101_000)).toBe(11);
    expect(secondsLeft(until, 111_999)).toBe(1);
    expect(secondsLeft(until, 112_000)).toBe(0);
    expect(secondsLeft(until, 200_000)).toBe(0);
    expect(secondsLeft(null, 0)).toBe(0);
    expect(secondsLeft(undefined, 0)).toBe(0);
  });

  it("says a wait in words", () => {
    expect(formatWait(0)).toBe("0 s");
    expect(formatWait(45)).toBe("45 s");
    expect(formatWait(60)).toBe("1 min");
    expect(formatWait(125)).toBe("2 min 5 s");
    expect(formatWait(3600)).toBe("1 h");
    expect(formatWait(3780)).toBe("1 h 3 min");
    expect(formatWait(1.2)).toBe("2 s");
  });
});

describe("mutes", () => {
  it("reads until when from the refusal's message", () => {
    const until = mutedUntilFrom("You are muted in this conversation until 2030-01-02T03:04:05.678Z.");
    expect(until?.toISOString()).toBe("2030-01-02T03:04:05.678Z");
    expect(mutedUntilFrom("You are muted until 2030-01-02T03:04:05+02:00")?.toISOString()).toBe("2030-01-02T01:04:05.000Z");
    expect(mutedUntilFrom("You are not a member of this conversation.")).toBeNull();
    expect(mutedUntilFrom("Muted, but no time said.")).toBeNull();
    expect(mutedUntilFrom("Valid until 2030-01-02T03:04:05Z")).toBeNull(); // no mute named
  });

  it("holds a mute while it lasts", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(activeUntil("2030-01-01T01:00:00Z", now)?.toISOString()).toBe("2030-01-01T01:00:00.000Z");
    expect(activeUntil("2029-12-31T23:59:59Z", now)).toBeNull();
    expect(activeUntil(undefined, now)).toBeNull();
  });
});
