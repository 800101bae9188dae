// The bytes of an attachment go straight from the browser to the storage's presigned URL (never through
// the API): an XMLHttpRequest, because only it reports upload progress. The signed headers are sent as
// given, except those the browser sets itself and a page may not (`content-length` is the body's length,
// `host` the URL's), so the signature still matches. No token goes with it: the URL is the permission.

import { ApiError } from "./client";

/** Headers a page may not set (the browser sends them itself). */
const BROWSER_SET = new Set(["content-length", "host", "connection", "expect"]);

export interface PutHandle {
  done: Promise<void>;
  abort(): void;
}

export function putFile(
  url: string,
  headers: Record<string, string>,
  body: Blob,
  onProgress: (loaded: number, total: number) => void,
): PutHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<void>((resolve, reject) => {
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) {
      if (!BROWSER_SET.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(body.size, body.size);
        resolve();
      } else if (xhr.status === 403) {
        reject(new ApiError(403, "upload_refused", "The storage refused the upload (its link may have expired)."));
      } else {
        reject(new ApiError(xhr.status, "upload_failed", `The upload failed (HTTP ${xhr.status}).`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload could not reach the storage."));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "Upload cancelled."));
    xhr.send(body);
  });
  return { done, abort: () => xhr.abort() };
}
