// A composer's attachments before they are sent: pure functions over a queue, so the rules are unit-tested.
// - Each file is checked first (docs/API-GUIDE.md "Attachments"): 1 byte to 25 MiB, a name of 1..=255 characters
//   without `/`, `\` or control characters, at most 10 per message; a refused file never joins the queue.
// - States: queued (waiting for a slot; 3 upload at once) → uploading (reserved, bytes going up, with
//   progress) → done (its attachment id is ready to send), or failed (with the reason; retry puts it back
//   to queued, and it is reserved anew). Removing one cancels it.
// - The message can go once every file is done; it then carries their ids in the order they were added.

import type { Attachment } from "../api/types";

export const MAX_FILES = 10;
export const MAX_SIZE = 25 * 1024 * 1024;
export const MAX_PARALLEL = 3;
/** Shown as previews: raster types a browser renders (never SVG, which may carry script). */
export const PREVIEW_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

export type UploadState = "queued" | "uploading" | "done" | "failed";

export interface FileLike {
  name: string;
  size: number;
  type: string;
}

export interface Upload {
  /** Local key (stable across retries). */
  key: string;
  file: FileLike;
  state: UploadState;
  /** Bytes sent so far. */
  loaded: number;
  error?: string;
  /** Set once reserved (the server's record, kept after done). */
  attachment?: Attachment;
}

/** Why a file cannot be attached, or null when it can. */
export function checkFile(file: FileLike): string | null {
  const name = file.name;
  const chars = [...name].length;
  if (chars === 0) return "A file needs a name.";
  if (chars > 255) return `“${name.slice(0, 40)}…”: the name is longer than 255 characters.`;
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f-\u009f]/.test(name)) return `“${name}”: the name may not contain / or \\ or control characters.`;
  if (file.size <= 0) return `“${name}” is empty.`;
  if (file.size > MAX_SIZE) return `“${name}” is ${formatSize(file.size)}; a file can be at most 25 MB.`;
  return null;
}

/** The media type to declare: the browser's guess, or a generic one. */
export function contentTypeOf(file: FileLike): string {
  const type = file.type.trim();
  return /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+/.test(type) && /^[\x20-\x7e]*$/.test(type) ? type : "application/octet-stream";
}

let counter = 0;
export const newUploadKey = () => `u${Date.now().toString(36)}${(counter++).toString(36)}`;

/** Adds the files that pass `checkFile` and fit under `MAX_FILES`; the others are named in `errors`. */
export function addFiles(queue: Upload[], files: FileLike[], key: () => string = newUploadKey): { queue: Upload[]; errors: string[] } {
  const errors: string[] = [];
  const next = queue.slice();
  let over = 0;
  for (const file of files) {
    const problem = checkFile(file);
    if (problem) {
      errors.push(problem);
      continue;
    }
    if (next.length >= MAX_FILES) {
      over += 1;
      continue;
    }
    next.push({ key: key(), file, state: "queued", loaded: 0 });
  }
  if (over > 0) errors.push(`At most ${MAX_FILES} files per message: ${over === 1 ? "one was" : `${over} were`} left out.`);
  return { queue: next, errors };
}

export function updateUpload(queue: Upload[], key: string, change: Partial<Upload>): Upload[] {
  return queue.map((u) => (u.key === key ? { ...u, ...change } : u));
}

export function removeUpload(queue: Upload[], key: string): Upload[] {
  return queue.filter((u) => u.key !== key);
}

/** A failed upload back in line (it is reserved again). */
export function retryUpload(queue: Upload[], key: string): Upload[] {
  return queue.map((u) => (u.key === key && u.state === "failed" ? { ...u, state: "queued", loaded: 0, error: undefined, attachment: undefined } : u));
}

/** The queued uploads to start now, given how many are uploading. */
export function nextToStart(queue: Upload[], parallel = MAX_PARALLEL): Upload[] {
  const running = queue.filter((u) => u.state === "uploading").length;
  return queue.filter((u) => u.state === "queued").slice(0, Math.max(0, parallel - running));
}

/** Can the message go: every file done (and none still going or failed)? True for no files. */
export function allDone(queue: Upload[]): boolean {
  return queue.every((u) => u.state === "done" && u.attachment);
}

/** The attachments to send, in the order added (only when `allDone`). */
export function readyAttachments(queue: Upload[]): Attachment[] {
  return allDone(queue) ? queue.map((u) => u.attachment!) : [];
}

/** 0..=1 of a file's bytes sent. */
export function progress(upload: Upload): number {
  if (upload.state === "done") return 1;
  return upload.file.size > 0 ? Math.min(1, upload.loaded / upload.file.size) : 0;
}

export function isPreviewable(contentType: string): boolean {
  return PREVIEW_TYPES.has(contentType.split(";")[0].trim().toLowerCase());
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * When a presigned download URL stops working (ms since the epoch), from its `X-Amz-Date` and
 * `X-Amz-Expires`; null when the URL does not say (then it is treated as expired).
 */
export function urlExpiry(url: string): number | null {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return null;
  }
  const date = params.get("X-Amz-Date");
  const expires = Number(params.get("X-Amz-Expires"));
  const m = date?.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!m || !Number.isFinite(expires)) return null;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + expires * 1000;
}

/** Is this download URL still good for at least `marginMs`? */
export function urlFresh(url: string | undefined, now: number = Date.now(), marginMs = 30_000): boolean {
  if (!url) return false;
  const expiry = urlExpiry(url);
  return expiry !== null && expiry - now > marginMs;
}
