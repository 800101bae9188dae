// Notifications: this browser's push switch (in the settings), and a conversation's level and mute (in
// its members or details panel).

import type { NotificationLevel, NotificationSettings } from "../api/types";
import type { AppState } from "../state/app";
import type { PushStatus } from "../state/push";
import { ErrorLine, useAction } from "./common";

const PUSH_TEXT: Record<PushStatus, string> = {
  unsupported: "This browser cannot show notifications from Parley.",
  blocked: "Notifications are blocked for Parley in this browser. Allow them in the site settings, then reload.",
  off: "Notifications are off on this browser.",
  on: "Notifications are on: this browser shows new messages while Parley is not in front.",
};

export function PushSettings({ state }: { state: AppState }) {
  const push = state.push;
  return (
    <section aria-labelledby="push-h">
      <h2 id="push-h">Notifications</h2>
      <p role="status" data-testid="push-status" data-state={push.status}>
        {PUSH_TEXT[push.status]}
      </p>
      {push.status === "off" && (
        // The browser's permission prompt starts in this click, never otherwise.
        <button type="button" disabled={push.busy} onClick={() => void push.enable()}>
          Enable notifications
        </button>
      )}
      {push.status === "on" && (
        <button type="button" disabled={push.busy} onClick={() => void push.disable()}>
          Disable notifications
        </button>
      )}
      <ErrorLine error={push.error} />
    </section>
  );
}

const LEVELS: { value: NotificationLevel; label: string }[] = [
  { value: "all", label: "All messages" },
  { value: "mentions", label: "Mentions only" },
  { value: "none", label: "Nothing" },
];

const MUTES: { label: string; ms: number }[] = [
  { label: "1 hour", ms: 3_600_000 },
  { label: "8 hours", ms: 8 * 3_600_000 },
  { label: "1 week", ms: 7 * 24 * 3_600_000 },
];

/** The mute in force, or null (none, or over). */
export function mutedUntil(settings: NotificationSettings | undefined, now = Date.now()): Date | null {
  if (!settings?.mutedUntil) return null;
  const until = new Date(settings.mutedUntil);
  return until.getTime() > now ? until : null;
}

export function ConversationNotifications({ state, conversationId }: { state: AppState; conversationId: string }) {
  const held = state.notificationSettings.get(conversationId);
  const action = useAction();
  const level = held?.level ?? "all";
  const muted = mutedUntil(held);
  const put = (level: NotificationLevel, until: Date | null) =>
    void action.run(() => state.setNotifications(conversationId, level, until ? until.toISOString() : null));
  return (
    <section class="notification-settings" aria-labelledby={`notify-h-${conversationId}`}>
      <h4 id={`notify-h-${conversationId}`}>Notifications</h4>
      <label>
        Notify me about
        <select
          value={level}
          disabled={action.busy}
          onChange={(e) => put(e.currentTarget.value as NotificationLevel, muted)}
        >
          {LEVELS.map((l) => (
            <option key={l.value} value={l.value}>
              {l.label}
            </option>
          ))}
        </select>
      </label>
      <div class="row mutes">
        <span>Mute for</span>
        {MUTES.map((m) => (
          <button key={m.label} type="button" aria-label={`Mute for ${m.label}`} disabled={action.busy} onClick={() => put(level, new Date(Date.now() + m.ms))}>
            {m.label}
          </button>
        ))}
      </div>
      {held && (
        <p class="muted" role="status" data-testid="notification-state" data-level={held.level} data-muted={muted ? "true" : "false"}>
          {LEVELS.find((l) => l.value === held.level)?.label}
          {muted ? ` · muted until ${muted.toLocaleString()}` : " · not muted"}{" "}
          {muted && (
            <button type="button" disabled={action.busy} onClick={() => put(held.level, null)}>
              Unmute
            </button>
          )}
        </p>
      )}
      <ErrorLine error={action.error} />
    </section>
  );
}
