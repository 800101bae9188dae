import { describe, expect, it } from "vitest";

import type { Attachment, Message } from "../src/api/types";
import { combine, emptyTimeline, merge } from "../src/state/timeline";
import {
  addFiles,
  allDone,
  checkFile,
  contentTypeOf,
  formatSize,
  isPreviewable,
  MAX_FILES,
  MAX_SIZE,
  nextToStart,
  progress,
  readyAttachments,
  removeUpload,
  retryUpload,
  updateUpload,
  urlExpiry,
  urlFresh,
  type Upload,
} from "../src/state/uploads";

const file = (name: string, size = 10, type = "text/plain") => ({ name, size, type });
let n = 0;
const key = () => `k${n++}`;

function attachment(id: string, url?: string): Attachment {
  return { id, conversationId: "C", fileName: `${id}.png`, contentType: "image/png", size: 3, createdAt: "2026-01-01T00:00:00Z", url };
}

describe("file checks", () => {
  it("takes 1 byte to 25 MiB and names of 1..=255 characters without / \\ or control characters", () => {
    expect(checkFile(file("a.txt", 1))).toBeNull();
    expect(checkFile(file("a.txt", MAX_SIZE))).toBeNull();
    expect(checkFile(file("Straße plan.png"))).toBeNull();
    expect(checkFile(file("é".repeat(255)))).toBeNull();
    expect(checkFile(file("a.txt", 0))).toMatch(/is empty/);
    expect(checkFile(file("big.bin", MAX_SIZE + 1))).toMatch(/at most 25 MB/);
    expect(checkFile(file(""))).toMatch(/needs a name/);
    expect(checkFile(file("x".repeat(256)))).toMatch(/longer than 255/);
    expect(checkFile(file("a/b.txt"))).toMatch(/may not contain/);
    expect(checkFile(file("a\\b.txt"))).toMatch(/may not contain/);
    expect(checkFile(file("a\nb.txt"))).toMatch(/may not contain/);
  });

  it("declares the browser's type, or a generic one", () => {
    expect(contentTypeOf(file("a.png", 1, "image/png"))).toBe("image/png");
    expect(contentTypeOf(file("a", 1, ""))).toBe("application/octet-stream");
    expect(contentTypeOf(file("a", 1, "nonsense"))).toBe("application/octet-stream");
  });

  it("previews raster images only, never SVG", () => {
    for (const t of ["image/png", "image/jpeg", "image/gif", "image/webp", "IMAGE/PNG"]) expect(isPreviewable(t)).toBe(true);
    for (const t of ["image/svg+xml", "text/html", "application/pdf"]) expect(isPreviewable(t)).toBe(false);
  });

  it("formats sizes", () => {
    expect(formatSize(12)).toBe("12 B");
    expect(formatSize(2048)).toBe("2.0 KB");
    expect(formatSize(5 * 1024 * 1024)).toBe("5.0 MB");
  });
});

describe("the upload queue", () => {
  it("queues good files and names the refused ones, at most 10 in all", () => {
    const { queue, errors } = addFiles([], [file("a.txt"), file("empty.txt", 0), file("b.txt")], key);
    expect(queue.map((u) => [u.file.name, u.state, u.loaded])).toEqual([
      ["a.txt", "queued", 0],
      ["b.txt", "queued", 0],
    ]);
    expect(errors).toEqual(["“empty.txt” is empty."]);
    const many = addFiles(queue, Array.from({ length: 10 }, (_, i) => file(`f${i}`)), key);
    expect(many.queue).toHaveLength(MAX_FILES);
    expect(many.errors).toEqual(["At most 10 files per message: 2 were left out."]);
    expect(addFiles(many.queue, [file("one more")], key).errors).toEqual(["At most 10 files per message: one was left out."]);
  });

  it("starts three at a time, and the next as one ends", () => {
    let { queue } = addFiles([], Array.from({ length: 5 }, (_, i) => file(`f${i}`)), key);
    const first = nextToStart(queue);
    expect(first.map((u) => u.file.name)).toEqual(["f0", "f1", "f2"]);
    for (const u of first) queue = updateUpload(queue, u.key, { state: "uploading" });
    expect(nextToStart(queue)).toEqual([]);
    queue = updateUpload(queue, first[0].key, { state: "done", attachment: attachment("A0") });
    expect(nextToStart(queue).map((u) => u.file.name)).toEqual(["f3"]);
  });

  it("can send only once every file is done, with their attachments in order", () => {
    let { queue } = addFiles([], [file("a", 100), file("b", 100)], key);
    const [a, b] = queue;
    expect(allDone([])).toBe(true);
    expect(allDone(queue)).toBe(false);
    queue = updateUpload(queue, a.key, { state: "uploading", loaded: 40, attachment: attachment("A") });
    expect(progress(queue[0])).toBe(0.4);
    queue = updateUpload(queue, a.key, { state: "done", loaded: 100 });
    expect(progress(queue[0])).toBe(1);
    expect(readyAttachments(queue)).toEqual([]);
    queue = updateUpload(queue, b.key, { state: "failed", error: "The upload could not reach the storage." });
    expect(allDone(queue)).toBe(false);
    // Retry: back in line, reserved anew.
    queue = retryUpload(queue, b.key);
    expect(queue[1]).toMatchObject({ state: "queued", loaded: 0, error: undefined, attachment: undefined });
    queue = updateUpload(queue, b.key, { state: "done", loaded: 100, attachment: attachment("B") });
    expect(readyAttachments(queue).map((x) => x.id)).toEqual(["A", "B"]);
    // Removing one (cancel before send) leaves the other.
    expect(readyAttachments(removeUpload(queue, a.key)).map((x) => x.id)).toEqual(["B"]);
  });

  it("retry touches failed uploads only", () => {
    const queue: Upload[] = [{ key: "x", file: file("a"), state: "uploading", loaded: 3 }];
    expect(retryUpload(queue, "x")).toEqual(queue);
  });
});

describe("download links", () => {
  const url = (date: string, expires: number) =>
    `http://127.0.0.1:3003/b/uploads/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=${date}&X-Amz-Expires=${expires}&X-Amz-Signature=ab`;

  it("expire at X-Amz-Date plus X-Amz-Expires", () => {
    const at = Date.UTC(2026, 11, 1, 12, 0, 0);
    expect(urlExpiry(url("20261201T120000Z", 900))).toBe(at + 900_000);
    expect(urlFresh(url("20261201T120000Z", 900), at + 60_000)).toBe(true);
    expect(urlFresh(url("20261201T120000Z", 900), at + 880_000)).toBe(false);
    expect(urlExpiry("http://x/y")).toBeNull();
    expect(urlFresh("http://x/y")).toBe(false);
    expect(urlFresh(undefined)).toBe(false);
  });

  it("a later copy of a message brings fresher URLs; a deleted one has no attachments", () => {
    const base: Message = {
      id: "M1", conversationId: "C", seq: 1, senderId: "U", clientMessageId: "c1", body: "", encrypted: false,
      createdAt: "2026-01-01T00:00:00Z", deleted: false, replyCount: 0, mentions: [], reactions: {},
      attachments: [attachment("A", "http://s/old")],
    };
    const same = combine(base, { ...base, attachments: [attachment("A", "http://s/old")] });
    expect(same).toBe(base);
    const fresh = combine(base, { ...base, attachments: [attachment("A", "http://s/new")], myReactions: [] });
    expect(fresh.attachments?.[0].url).toBe("http://s/new");
    // An event's copy (no URLs) keeps the held ones, and changes nothing.
    expect(combine(base, { ...base, attachments: [attachment("A")] })).toBe(base);
    expect(combine(fresh, { ...base, attachments: [attachment("A")] }).attachments?.[0].url).toBe("http://s/new");
    const deleted = combine(base, { ...base, deleted: true });
    expect(deleted.attachments).toEqual([]);
    // An optimistic bubble with files is settled by the stored message like any other.
    const timeline = { ...emptyTimeline(), pending: [{ clientMessageId: "c1", body: "", createdAt: "", state: "sending" as const, attempts: 0, attachments: [attachment("A")] }] };
    expect(merge(timeline, [base], "U").pending).toEqual([]);
  });
});
