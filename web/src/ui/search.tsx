// Message search (GET /search/messages): every conversation, or the open one; newest first, page by page.
// Each term finds words that start with it. A result opens its conversation (and its thread, for a reply).

import { useState } from "preact/hooks";

import type { Message } from "../api/types";
import type { AppState } from "../state/app";
import { ErrorLine, useAction } from "./common";
import { MessageBody, when } from "./message";

interface Results {
  q: string;
  conversationId: string | null;
  items: Message[];
  cursor: string | null;
}

export function SearchPanel({ state }: { state: AppState }) {
  const [q, setQ] = useState("");
  const [here, setHere] = useState(false);
  const [results, setResults] = useState<Results | null>(null);
  const action = useAction();
  const scope = here && state.openId ? state.openId : null;

  const search = (more: boolean) =>
    action.run(async () => {
      const query = more && results ? results.q : q.trim();
      const conversationId = more && results ? results.conversationId : scope;
      if (!query) return;
      const page = await state.api.searchMessages(query, conversationId, more ? results?.cursor : null);
      state.wantUsers(page.items.map((m) => m.senderId));
      setResults({
        q: query,
        conversationId,
        items: more && results ? [...results.items, ...page.items.filter((m) => !results.items.some((r) => r.id === m.id))] : page.items,
        cursor: page.nextCursor,
      });
    });

  const openResult = (m: Message) => {
    void state.open(m.conversationId).then(() => {
      if (m.parentMessageId) void state.openThread(m.conversationId, m.parentMessageId);
    });
  };

  return (
    <div class="search">
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void search(false);
        }}
      >
        <div class="row">
          <label class="grow">
            <span class="sr-only">Search messages</span>
            <input
              type="search"
              name="search"
              placeholder="Search messages…"
              value={q}
              maxLength={200}
              onInput={(e) => setQ(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === "Escape") {
                  setQ("");
                  setResults(null);
                }
              }}
            />
          </label>
          <button type="submit" disabled={action.busy || !q.trim()}>
            Search
          </button>
        </div>
        {state.openId && (
          <label class="scope">
            <input type="checkbox" checked={here} onChange={(e) => setHere(e.currentTarget.checked)} /> Only in this conversation
          </label>
        )}
      </form>
      {action.busy && !results && <p class="muted">Searching…</p>}
      <ErrorLine error={action.error} />
      {results && (
        <section class="results" aria-label="Search results" data-testid="search-results">
          <div class="row">
            <p class="grow muted" aria-live="polite">
              {results.items.length === 0
                ? `No messages match “${results.q}”.`
                : `${results.items.length}${results.cursor ? "+" : ""} result${results.items.length === 1 ? "" : "s"} for “${results.q}”`}
            </p>
            <button type="button" aria-label="Close search results" onClick={() => setResults(null)}>
              ×
            </button>
          </div>
          <ul>
            {results.items.map((m) => {
              const conversation = state.conversation(m.conversationId);
              return (
                <li key={m.id}>
                  <button type="button" class="result" data-testid="search-result" onClick={() => openResult(m)}>
                    <span class="meta">
                      <strong>{conversation ? state.title(conversation) : "Conversation"}</strong> ·{" "}
                      {m.senderId === state.me?.id ? "You" : state.name(m.senderId)} · <time dateTime={m.createdAt}>{when(m.createdAt)}</time>
                      {m.parentMessageId && " · in a thread"}
                    </span>
                    <span class="body">
                      <MessageBody state={state} message={m} />
                    </span>
                  </button>
                </li>
              );
            })}
          </ul>
          {results.cursor && (
            <button type="button" disabled={action.busy} onClick={() => void search(true)}>
              {action.busy ? "Loading…" : "Load more results"}
            </button>
          )}
        </section>
      )}
    </div>
  );
}
