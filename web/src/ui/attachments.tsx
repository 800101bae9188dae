// Attachments: a message's files (raster images as previews, other files as download links), and a
// composer's files before sending (progress bars, cancel/remove, retry). Download URLs last 15 minutes:
// a click on an expired one (or a preview that fails to load) gets a fresh one first.

import { useEffect, useState } from "preact/hooks";

import type { Attachment, Message } from "../api/types";
import type { AppState } from "../state/app";
import { formatSize, isPreviewable, progress, urlFresh, type Upload } from "../state/uploads";

/** Follows a download link, with a fresh URL when the held one is expired or about to be. */
function useDownload(state: AppState, attachment: Attachment) {
  const [error, setError] = useState<string | null>(null);
  const url = state.attachmentUrl(attachment);
  const onClick = (e: MouseEvent) => {
    if (urlFresh(url)) return;
    e.preventDefault();
    setError(null);
    state.refreshAttachment(attachment).then(
      (fresh) => {
        const a = document.createElement("a");
        a.href = fresh;
        a.rel = "noopener";
        a.download = attachment.fileName;
        document.body.append(a);
        a.click();
        a.remove();
      },
      (failure: unknown) => setError(failure instanceof Error ? failure.message : String(failure)),
    );
  };
  return { url, onClick, error };
}

function ImagePreview({ state, attachment }: { state: AppState; attachment: Attachment }) {
  const { url, onClick, error } = useDownload(state, attachment);
  const [retried, setRetried] = useState(false);
  return (
    <figure class="attachment image" data-testid="attachment" data-kind="image" data-id={attachment.id}>
      <a href={url} rel="noopener" download={attachment.fileName} onClick={onClick} title={`Download ${attachment.fileName}`}>
        <img
          src={url}
          alt={attachment.fileName}
          loading="lazy"
          decoding="async"
          data-testid="attachment-image"
          onError={() => {
            // Most likely an expired link (a message read long ago): once, with a fresh one.
            if (retried) return;
            setRetried(true);
            void state.refreshAttachment(attachment).catch(() => {});
          }}
        />
      </a>
      <figcaption>
        {attachment.fileName} <span class="muted">{formatSize(attachment.size)}</span>
      </figcaption>
      {error && <span class="error">{error}</span>}
    </figure>
  );
}

function FileLink({ state, attachment }: { state: AppState; attachment: Attachment }) {
  const { url, onClick, error } = useDownload(state, attachment);
  return (
    <div class="attachment file" data-testid="attachment" data-kind="file" data-id={attachment.id}>
      <span class="file-icon" aria-hidden="true">
        ⤓
      </span>
      <a href={url} rel="noopener" download={attachment.fileName} onClick={onClick} data-testid="attachment-link">
        {attachment.fileName}
      </a>{" "}
      <span class="muted">{formatSize(attachment.size)}</span>
      {error && <span class="error"> {error}</span>}
    </div>
  );
}

export function Attachments({ state, message }: { state: AppState; message: Message }) {
  const attachments = message.attachments ?? [];
  useEffect(() => state.wantUrls(message), [message]);
  if (attachments.length === 0) return null;
  return (
    <div class="attachments" data-testid="attachments">
      {attachments.map((a) =>
        isPreviewable(a.contentType) ? (
          <ImagePreview key={a.id} state={state} attachment={a} />
        ) : (
          <FileLink key={a.id} state={state} attachment={a} />
        ),
      )}
    </div>
  );
}

/** Names and sizes only (an optimistic bubble, before the stored message has URLs). */
export function AttachmentNames({ attachments }: { attachments: Attachment[] }) {
  if (attachments.length === 0) return null;
  return (
    <ul class="attachment-names">
      {attachments.map((a) => (
        <li key={a.id}>
          {a.fileName} <span class="muted">{formatSize(a.size)}</span>
        </li>
      ))}
    </ul>
  );
}

const STATE_LABEL: Record<Upload["state"], string> = {
  queued: "Waiting…",
  uploading: "Uploading…",
  done: "Ready",
  failed: "Failed",
};

/** A composer's files: a progress bar each, and Cancel/Remove and Retry. */
export function UploadList(props: { state: AppState; conversationId: string; parentId?: string; uploads: Upload[] }) {
  const { state, conversationId, parentId, uploads } = props;
  if (uploads.length === 0) return null;
  return (
    <ul class="uploads" aria-label="Files to send" data-testid="uploads">
      {uploads.map((u) => {
        const share = progress(u);
        return (
          <li key={u.key} class={`upload ${u.state}`} data-testid="upload" data-state={u.state}>
            <span class="upload-name" title={u.file.name}>
              {u.file.name}
            </span>
            <span class="muted"> {formatSize(u.file.size)}</span>
            <progress
              max={1}
              value={share}
              aria-label={`${u.file.name}: ${Math.round(share * 100)}%`}
              data-testid="upload-progress"
            />
            <span class="upload-state" aria-live="polite">
              {u.state === "uploading" ? `${Math.round(share * 100)}%` : STATE_LABEL[u.state]}
            </span>
            {u.state === "failed" && (
              <>
                {u.error && <span class="error"> {u.error}</span>}
                <button type="button" onClick={() => state.retryUpload(conversationId, parentId, u.key)}>
                  Retry
                </button>
              </>
            )}
            <button
              type="button"
              aria-label={`${u.state === "done" || u.state === "failed" ? "Remove" : "Cancel"} ${u.file.name}`}
              onClick={() => state.removeUpload(conversationId, parentId, u.key)}
            >
              {u.state === "done" || u.state === "failed" ? "Remove" : "Cancel"}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
