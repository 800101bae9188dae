// Invitations to groups (accept or decline), a group's invite links (make, share, revoke; owner and
// admins), and joining by one: the prompt an opened link (`#/join/<code>`) shows, and a form for a
// pasted link or code.

import { useRef, useState } from "preact/hooks";

import { describeError } from "../api/client";
import type { Conversation, Invitation, InviteLink } from "../api/types";
import type { AppState } from "../state/app";
import { inviteCodeFrom, inviteUrl } from "../state/invites";
import { ErrorLine, useAction } from "./common";

/** My pending invitations (in the conversation list), newest first. */
export function Invitations({ state }: { state: AppState }) {
  if (state.invitations.length === 0) return null;
  return (
    <section class="invitations" aria-labelledby="invitations-h" data-testid="invitations">
      <h3 id="invitations-h">Invitations</h3>
      <ul>
        {state.invitations.map((i) => (
          <InvitationItem key={i.id} state={state} invitation={i} />
        ))}
      </ul>
    </section>
  );
}

function InvitationItem({ state, invitation }: { state: AppState; invitation: Invitation }) {
  const action = useAction();
  const group = invitation.conversation.name ?? "a group";
  const members = invitation.conversation.memberCount;
  return (
    <li class="invitation" data-testid="invitation" data-id={invitation.id}>
      <p>
        <strong>{state.name(invitation.invitedBy)}</strong> invited you to <strong>{group}</strong>{" "}
        <span class="muted">
          · {members} {members === 1 ? "member" : "members"}
        </span>
      </p>
      <div class="row">
        <button
          type="button"
          class="primary"
          aria-label={`Accept the invitation to ${group}`}
          disabled={action.busy}
          onClick={() => void action.run(() => state.acceptInvitation(invitation.id))}
        >
          Accept
        </button>
        <button
          type="button"
          aria-label={`Decline the invitation to ${group}`}
          disabled={action.busy}
          onClick={() => void action.run(() => state.declineInvitation(invitation.id))}
        >
          Decline
        </button>
      </div>
      <ErrorLine error={action.error} />
    </li>
  );
}

/** Asked when an invite link was opened: join its group, or not. */
export function JoinPrompt({ state, code }: { state: AppState; code: string }) {
  const action = useAction();
  return (
    <section class="join-prompt" role="dialog" aria-labelledby="join-h" data-testid="join-prompt">
      <h2 id="join-h">Join a group?</h2>
      <p>
        You opened an invite link (<code>{code}</code>). Join the group it invites you to?
      </p>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            try {
              await state.joinByInvite(code);
            } catch (error) {
              throw new Error(`Cannot join: ${describeError(error)}`);
            }
          });
        }}
      >
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Joining…" : "Join group"}
        </button>
        <button type="button" onClick={() => state.dismissJoin()}>
          {action.error ? "Close" : "Not now"}
        </button>
      </form>
      {action.error && (
        <p class="error" role="alert" data-testid="join-error">
          {action.error}
        </p>
      )}
    </section>
  );
}

/** A pasted invite link or code, to join its group. */
export function JoinByLink({ state }: { state: AppState }) {
  const [text, setText] = useState("");
  const action = useAction();
  return (
    <details class="new-group">
      <summary>Join with an invite link</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const code = inviteCodeFrom(text);
          if (!code) return action.setError("That is not an invite link or code.");
          void action.run(() => state.joinByInvite(code)).then((ok) => ok && setText(""));
        }}
      >
        <label>
          Invite link or code
          <input value={text} onInput={(e) => setText(e.currentTarget.value)} required autocomplete="off" />
        </label>
        <button type="submit" disabled={action.busy}>
          Join
        </button>
        <ErrorLine error={action.error} />
      </form>
    </details>
  );
}

const EXPIRIES: { seconds: number; label: string }[] = [
  { seconds: 1800, label: "30 minutes" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 86_400, label: "1 day" },
  { seconds: 604_800, label: "7 days" },
];

/** A group's live invite links (owner and admins), read when opened: make one, copy, revoke. */
export function InviteLinks({ state, conversation }: { state: AppState; conversation: Conversation }) {
  const action = useAction();
  const [links, setLinks] = useState<InviteLink[] | null>(null);
  const [expires, setExpires] = useState(86_400);
  const [maxUses, setMaxUses] = useState("");
  const [fresh, setFresh] = useState<string | null>(null);
  const load = () => action.run(async () => setLinks((await state.api.invites(conversation.id)).items));
  return (
    <details
      class="panel-section invite-links"
      onToggle={(e) => {
        if (e.currentTarget.open) void load();
      }}
    >
      <summary>Invite links</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const uses = maxUses.trim() ? Number(maxUses) : undefined;
          if (uses !== undefined && !(Number.isInteger(uses) && uses >= 1 && uses <= 1000)) {
            return action.setError("Maximum uses: a whole number from 1 to 1000, or empty for no limit.");
          }
          void action.run(async () => {
            const link = await state.api.createInvite(conversation.id, { expiresInSeconds: expires, maxUses: uses });
            setLinks((held) => [link, ...(held ?? []).filter((l) => l.code !== link.code)]);
            setFresh(link.code);
            setMaxUses("");
          });
        }}
      >
        <label>
          Expires after
          <select value={String(expires)} onChange={(e) => setExpires(Number(e.currentTarget.value))}>
            {EXPIRIES.map((x) => (
              <option key={x.seconds} value={String(x.seconds)}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Maximum uses (empty: no limit)
          <input type="number" min={1} max={1000} step={1} value={maxUses} onInput={(e) => setMaxUses(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={action.busy}>
          Create link
        </button>
      </form>
      {links !== null && links.length === 0 && <p class="muted">No links yet (or all expired, used up or revoked).</p>}
      <ul data-testid="invite-links">
        {(links ?? []).map((link) => (
          <InviteLinkItem
            key={link.code}
            state={state}
            conversation={conversation}
            link={link}
            fresh={link.code === fresh}
            onRevoked={() => setLinks((held) => (held ?? []).filter((l) => l.code !== link.code))}
          />
        ))}
      </ul>
      {links !== null && (
        <button type="button" disabled={action.busy} onClick={() => void load()}>
          Refresh links
        </button>
      )}
      <ErrorLine error={action.error} />
    </details>
  );
}

function InviteLinkItem(props: {
  state: AppState;
  conversation: Conversation;
  link: InviteLink;
  fresh: boolean;
  onRevoked: () => void;
}) {
  const { state, conversation, link, fresh, onRevoked } = props;
  const action = useAction();
  const [copied, setCopied] = useState<"copied" | "select" | null>(null);
  const text = useRef<HTMLElement>(null);
  const url = inviteUrl(location.href, link.code);
  const uses =
    link.maxUses === null ? `${link.uses} ${link.uses === 1 ? "use" : "uses"}, no limit` : `${link.uses} of ${link.maxUses} uses`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("copied");
    } catch {
      // No clipboard here (an insecure page, or refused): the link selected, to copy by hand.
      const el = text.current;
      const selection = window.getSelection();
      if (el && selection) {
        selection.selectAllChildren(el);
      }
      setCopied("select");
    }
  };
  return (
    <li class={`invite-link ${fresh ? "fresh" : ""}`} data-testid="invite-link" data-code={link.code} data-uses={link.uses}>
      <code class="invite-url" data-testid="invite-url" ref={text}>
        {url}
      </code>
      <span class="muted" data-testid="invite-uses">
        {uses} · expires {new Date(link.expiresAt).toLocaleString()}
      </span>
      <div class="row wrap">
        <button type="button" aria-label={`Copy invite link ${link.code}`} onClick={() => void copy()}>
          Copy
        </button>
        <button
          type="button"
          class="danger"
          aria-label={`Revoke invite link ${link.code}`}
          disabled={action.busy}
          onClick={() => {
            if (!confirm("Revoke this invite link? Nobody can join by it any more.")) return;
            void action.run(async () => {
              await state.api.revokeInvite(conversation.id, link.code);
              onRevoked();
            });
          }}
        >
          Revoke
        </button>
        {copied === "copied" && (
          <span role="status" data-testid="invite-copied">
            Copied.
          </span>
        )}
        {copied === "select" && <span role="status">Selected: press Ctrl+C (⌘C on a Mac) to copy.</span>}
      </div>
      <ErrorLine error={action.error} />
    </li>
  );
}
