// The pinned messages of a conversation: newest pin first, live (`message.pinned` / `.unpinned`), with
// Unpin for whoever may pin (the owner and admins of a group, either member of a direct conversation).

import type { Conversation } from "../api/types";
import type { AppState } from "../state/app";
import { canPin } from "../state/moderation";
import { ErrorLine, useAction } from "./common";
import { MessageBody, when } from "./message";

export function PinsPanel({ state, conversation, onClose }: { state: AppState; conversation: Conversation; onClose: () => void }) {
  const pins = state.pins.get(conversation.id);
  const action = useAction();
  const mayPin = canPin(conversation);
  return (
    <aside class="pins" aria-label="Pinned messages" data-testid="pins">
      <header class="thread-header">
        <h3>Pinned messages</h3>
        <button type="button" aria-label="Close pinned messages" onClick={onClose}>
          ×
        </button>
      </header>
      {pins === undefined && <p class="muted">Loading pinned messages…</p>}
      {pins !== undefined && pins.length === 0 && (
        <p class="muted">
          Nothing is pinned yet.
          {mayPin ? " Pin a message with its Pin button." : ""}
        </p>
      )}
      <ol class="pin-list">
        {(pins ?? []).map((m) => (
          <li key={m.id} class="message pinned" data-testid="pin" data-id={m.id}>
            <div class="meta">
              <span class="sender">{m.senderId === state.me?.id ? "You" : state.name(m.senderId)}</span>
              <time dateTime={m.createdAt}>{when(m.createdAt)}</time>
            </div>
            <p class="body" data-testid="pin-body">
              <MessageBody state={state} message={m} />
              {!m.body && !m.deleted && (m.attachments ?? []).length > 0 && (
                <span class="muted">{(m.attachments ?? []).map((a) => a.fileName).join(", ")}</span>
              )}
            </p>
            {mayPin && (
              <div class="actions">
                <button type="button" disabled={action.busy} onClick={() => void action.run(() => state.pin(conversation.id, m.id, false))}>
                  Unpin
                </button>
              </div>
            )}
          </li>
        ))}
      </ol>
      <ErrorLine error={action.error} />
    </aside>
  );
}
