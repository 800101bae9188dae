// Moderation in a conversation's panel and on its messages: a member's mute, ban and report actions,
// the bans and the reports (owner and admins), slow mode, and the report form a message uses too.
// Which buttons show follows the ranks (state/moderation.ts); the server has the last word.

import { useState } from "preact/hooks";

import type { Conversation, Member, Report, ReportReason } from "../api/types";
import type { AppState } from "../state/app";
import {
  canModerate,
  isModerator,
  MUTE_DURATIONS,
  REPORT_NOTE_CHARS,
  REPORT_REASONS,
  SLOW_MODES,
  slowModeLabel,
} from "../state/moderation";
import { ErrorLine, useAction, useTickUntil } from "./common";

const reasonLabel = (reason: ReportReason) => REPORT_REASONS.find((r) => r.value === reason)?.label ?? reason;

/** Reports a message (its sender) or a member: a reason and an optional note. */
export function ReportForm(props: {
  state: AppState;
  conversationId: string;
  messageId?: string;
  userId?: string;
  onClose: () => void;
}) {
  const { state, conversationId, messageId, userId, onClose } = props;
  const [reason, setReason] = useState<ReportReason>("spam");
  const [note, setNote] = useState("");
  const [sent, setSent] = useState(false);
  const action = useAction();
  if (sent) {
    return (
      <p class="report-sent" role="status" data-testid="report-sent">
        Reported. Thank you.{" "}
        <button type="button" onClick={onClose}>
          OK
        </button>
      </p>
    );
  }
  return (
    <form
      class="report-form"
      data-testid="report-form"
      aria-label={messageId ? "Report this message" : `Report ${state.name(userId ?? "")}`}
      onSubmit={(e) => {
        e.preventDefault();
        void action
          .run(() =>
            state.api.report({ conversationId, messageId, userId, reason, note: note.trim() || undefined }),
          )
          .then((ok) => ok && setSent(true));
      }}
    >
      <label>
        Reason
        <select value={reason} onChange={(e) => setReason(e.currentTarget.value as ReportReason)}>
          {REPORT_REASONS.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Note (optional)
        <textarea value={note} maxLength={REPORT_NOTE_CHARS} rows={2} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button type="submit" disabled={action.busy}>
          Send report
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
      <ErrorLine error={action.error} />
    </form>
  );
}

type Open = null | "mute" | "ban" | "report";

/** One member's actions for me: mute or unmute and ban (by rank), and report (anyone but me). */
export function MemberActions({ state, conversation, member }: { state: AppState; conversation: Conversation; member: Member }) {
  const [open, setOpen] = useState<Open>(null);
  const [reason, setReason] = useState("");
  const action = useAction();
  const me = state.me?.id;
  const name = state.name(member.userId);
  const self = member.userId === me;
  const moderate = canModerate(conversation.myRole, member.role, self, conversation.type === "group");
  const muted = state.mutedUntil(conversation.id, member.userId);
  useTickUntil(muted ? muted.getTime() : null, 60_000);
  if (self) return null;
  const toggle = (what: Open) => setOpen(open === what ? null : what);
  return (
    <div class="member-actions" data-testid="member-actions">
      {muted && (
        <span class="muted" data-testid="member-muted">
          Muted until {muted.toLocaleString()}
        </span>
      )}
      <div class="row wrap">
        {moderate &&
          (muted ? (
            <button type="button" aria-label={`Unmute ${name}`} disabled={action.busy} onClick={() => void action.run(() => state.unmute(conversation.id, member.userId))}>
              Unmute
            </button>
          ) : (
            <button type="button" aria-label={`Mute ${name}`} aria-expanded={open === "mute"} onClick={() => toggle("mute")}>
              Mute
            </button>
          ))}
        {moderate && (
          <button type="button" class="danger" aria-label={`Ban ${name}`} aria-expanded={open === "ban"} onClick={() => toggle("ban")}>
            Ban
          </button>
        )}
        <button type="button" aria-label={`Report ${name}`} aria-expanded={open === "report"} onClick={() => toggle("report")}>
          Report
        </button>
      </div>
      {open === "mute" && !muted && (
        <div class="row wrap" role="group" aria-label={`Mute ${name} for`}>
          <span>Mute for</span>
          {MUTE_DURATIONS.map((d) => (
            <button
              key={d.seconds}
              type="button"
              aria-label={`Mute ${name} for ${d.label}`}
              disabled={action.busy}
              onClick={() => void action.run(() => state.mute(conversation.id, member.userId, d.seconds)).then((ok) => ok && setOpen(null))}
            >
              {d.label}
            </button>
          ))}
        </div>
      )}
      {open === "ban" && (
        <form
          class="row wrap"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(() => state.ban(conversation.id, member.userId, reason)).then((ok) => ok && setOpen(null));
          }}
        >
          <label class="grow">
            <span class="sr-only">Reason for banning {name} (optional)</span>
            <input placeholder="Reason (optional)" value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="submit" class="danger" disabled={action.busy}>
            Ban {name}
          </button>
        </form>
      )}
      {open === "report" && <ReportForm state={state} conversationId={conversation.id} userId={member.userId} onClose={() => setOpen(null)} />}
      <ErrorLine error={action.error} />
    </div>
  );
}

/** Slow mode for the owner and admins: a plain member's messages at least this far apart. */
export function SlowModeSetting({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const action = useAction();
  const current = conversation.slowModeSeconds ?? 0;
  const known = SLOW_MODES.some((m) => m.seconds === current);
  return (
    <section class="panel-section" aria-labelledby={`slow-h-${conversation.id}`}>
      <h4 id={`slow-h-${conversation.id}`}>Slow mode</h4>
      <label>
        Plain members send at most one message every
        <select
          value={String(current)}
          disabled={action.busy}
          onChange={(e) => void action.run(() => state.setSlowMode(conversation.id, Number(e.currentTarget.value)))}
        >
          {!known && <option value={String(current)}>{slowModeLabel(current)}</option>}
          {SLOW_MODES.map((m) => (
            <option key={m.seconds} value={String(m.seconds)}>
              {m.label}
            </option>
          ))}
        </select>
      </label>
      <p class="muted" data-testid="slow-mode-state" data-seconds={current}>
        {current > 0 ? `On: ${slowModeLabel(current)} between a member’s messages. Owner and admins are exempt.` : "Off."}
      </p>
      <ErrorLine error={action.error} />
    </section>
  );
}

/** The group's bans (owner and admins), read when opened, with Unban. */
export function BansSection({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const action = useAction();
  const bans = state.bans.get(conversation.id);
  return (
    <details
      class="panel-section"
      onToggle={(e) => {
        if (e.currentTarget.open) void action.run(() => state.loadBans(conversation.id));
      }}
    >
      <summary>Banned{bans ? ` (${bans.length})` : ""}</summary>
      {bans === undefined && action.busy && <p class="muted">Loading bans…</p>}
      {bans !== undefined && bans.length === 0 && <p class="muted">Nobody is banned.</p>}
      <ul data-testid="bans">
        {(bans ?? []).map((b) => (
          <li key={b.userId} class="row wrap" data-testid="ban">
            <span class="grow">
              {state.name(b.userId)}
              <br />
              <span class="muted">
                by {state.name(b.bannedBy)}, {new Date(b.createdAt).toLocaleString()}
                {b.reason ? ` · ${b.reason}` : ""}
              </span>
            </span>
            <button
              type="button"
              aria-label={`Unban ${state.name(b.userId)}`}
              disabled={action.busy}
              onClick={() => void action.run(() => state.unban(conversation.id, b.userId))}
            >
              Unban
            </button>
          </li>
        ))}
      </ul>
      <ErrorLine error={action.error} />
    </details>
  );
}

/** The open reports of a conversation (owner and admins), read when opened, to dismiss or mark actioned. */
export function ReportsSection({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const action = useAction();
  const [reports, setReports] = useState<Report[] | null>(null);
  const load = () =>
    action.run(async () => {
      const { items } = await state.api.reports(conversation.id, "open");
      state.wantUsers(items.flatMap((r) => [r.reporterId, ...(r.userId ? [r.userId] : [])]));
      setReports(items);
    });
  const close = (report: Report, status: "dismissed" | "actioned") =>
    void action.run(async () => {
      await state.api.closeReport(conversation.id, report.id, status);
      setReports((held) => (held ?? []).filter((r) => r.id !== report.id));
    });
  return (
    <details
      class="panel-section reports"
      onToggle={(e) => {
        if (e.currentTarget.open) void load();
      }}
    >
      <summary>Reports{reports ? ` (${reports.length})` : ""}</summary>
      <button type="button" disabled={action.busy} onClick={() => void load()}>
        Refresh
      </button>
      {reports === null && action.busy && <p class="muted">Loading reports…</p>}
      {reports !== null && reports.length === 0 && (
        <p class="muted" data-testid="no-reports">
          No open reports.
        </p>
      )}
      <ul data-testid="reports">
        {(reports ?? []).map((r) => {
          const message = r.messageId ? state.findMessage(conversation.id, r.messageId) : undefined;
          return (
            <li key={r.id} class="report" data-testid="report" data-id={r.id}>
              <p>
                <strong>{reasonLabel(r.reason)}</strong>
                {r.userId && <> about {state.name(r.userId)}</>}
                <br />
                <span class="muted">
                  Reported by {state.name(r.reporterId)}, {new Date(r.createdAt).toLocaleString()}
                </span>
              </p>
              {r.messageId && (
                <blockquote class="reported-message" data-testid="reported-message">
                  {message ? (message.deleted ? "Message deleted" : message.body || "(attachments)") : "A message not loaded here"}
                </blockquote>
              )}
              {r.note && <p class="report-note" data-testid="report-note">{r.note}</p>}
              <div class="row wrap">
                <button type="button" disabled={action.busy} onClick={() => close(r, "dismissed")}>
                  Dismiss
                </button>
                <button type="button" disabled={action.busy} onClick={() => close(r, "actioned")}>
                  Mark actioned
                </button>
              </div>
            </li>
          );
        })}
      </ul>
      <ErrorLine error={action.error} />
    </details>
  );
}

/** The moderation sections of a group's panel, for its owner and admins. */
export function ModerationSections({ state, conversation }: { state: AppState; conversation: Conversation }) {
  if (!isModerator(conversation)) return null;
  return (
    <>
      <SlowModeSetting state={state} conversation={conversation} />
      <ReportsSection state={state} conversation={conversation} />
      <BansSection state={state} conversation={conversation} />
    </>
  );
}
