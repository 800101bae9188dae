import { useEffect, useState } from "preact/hooks";

import type { Block, Session, UserStatus, WhoCanAddMe } from "../api/types";
import type { AppState } from "../state/app";
import { ErrorLine, useAction } from "./common";
import { PushSettings } from "./notifications";

export function Settings({ state }: { state: AppState }) {
  return (
    <main class="settings">
      <Profile state={state} />
      <Privacy state={state} />
      <PushSettings state={state} />
      <Sessions state={state} />
      <Blocks state={state} />
    </main>
  );
}

function Profile({ state }: { state: AppState }) {
  const me = state.me!;
  const [displayName, setDisplayName] = useState(me.displayName);
  const [status, setStatus] = useState<UserStatus>(me.status);
  const action = useAction();
  const [saved, setSaved] = useState(false);
  return (
    <section aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <p class="muted">Signed in as @{me.username}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          void action.run(() => state.updateMe({ displayName: displayName.trim(), status })).then(setSaved);
        }}
      >
        <label>
          Display name
          <input value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} required maxLength={64} />
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as UserStatus)}>
            <option value="online">online</option>
            <option value="away">away</option>
            <option value="busy">busy</option>
            <option value="offline">offline</option>
          </select>
        </label>
        <button type="submit" disabled={action.busy}>
          Save
        </button>
        {saved && <span role="status"> Saved.</span>}
        <ErrorLine error={action.error} />
      </form>
    </section>
  );
}

const WHO_CAN_ADD_ME: { value: WhoCanAddMe; label: string; hint: string }[] = [
  { value: "everyone", label: "Everyone", hint: "Anyone who can message you can put you into a group." },
  { value: "nobody", label: "Only by invitation", hint: "Being added to a group sends you an invitation to accept or decline." },
];

function Privacy({ state }: { state: AppState }) {
  const load = useAction();
  const save = useAction();
  const [saved, setSaved] = useState(false);
  // My own profile read again: `whoCanAddMe` is in `GET /users/me` (a sign-in's answer may leave it out).
  const [ready, setReady] = useState(false);
  useEffect(() => void load.run(() => state.refreshMe()).then(() => setReady(true)), []);
  // The choice being saved shows at once (back to the profile's if refused); not said yet: everyone.
  const [choosing, setChoosing] = useState<WhoCanAddMe | null>(null);
  const current: WhoCanAddMe | undefined = choosing ?? state.me?.whoCanAddMe ?? (ready ? "everyone" : undefined);
  return (
    <section aria-labelledby="privacy-h">
      <h2 id="privacy-h">Privacy</h2>
      <fieldset class="choices" data-testid="who-can-add-me" data-value={current ?? ""} disabled={current === undefined}>
        <legend>Who can add me to groups</legend>
        {current === undefined && <p class="muted">Loading…</p>}
        {WHO_CAN_ADD_ME.map((choice) => (
          <label key={choice.value} class="choice">
            <input
              type="radio"
              name="who-can-add-me"
              value={choice.value}
              checked={current === choice.value}
              onChange={() => {
                setSaved(false);
                setChoosing(choice.value);
                void save.run(() => state.updateMe({ whoCanAddMe: choice.value })).then((ok) => {
                  setChoosing(null);
                  setSaved(ok);
                });
              }}
            />
            <span>
              {choice.label}
              <br />
              <span class="muted">{choice.hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {saved && <span role="status"> Saved.</span>}
      <ErrorLine error={load.error ?? save.error} />
    </section>
  );
}

function Sessions({ state }: { state: AppState }) {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const action = useAction();
  const load = () => action.run(async () => setSessions((await state.api.sessions()).items));
  useEffect(() => void load(), []);
  return (
    <section aria-labelledby="sessions-h">
      <h2 id="sessions-h">Sessions</h2>
      {sessions === null && !action.error && <p class="muted">Loading sessions…</p>}
      <ul data-testid="sessions">
        {(sessions ?? []).map((s) => (
          <li key={s.id} class="row">
            <span class="grow">
              {s.userAgent ?? "Unknown device"}
              {s.current && <strong> (this device)</strong>}
              <br />
              <span class="muted">
                Signed in {new Date(s.createdAt).toLocaleString()} · last used {new Date(s.lastUsedAt).toLocaleString()}
              </span>
            </span>
            <button
              type="button"
              onClick={() =>
                void action.run(async () => {
                  await state.api.revokeSession(s.id);
                  if (s.current) state.signedOut("You signed this device out.");
                  else await load();
                })
              }
            >
              {s.current ? "Sign out here" : "Revoke"}
            </button>
          </li>
        ))}
      </ul>
      <ErrorLine error={action.error} />
    </section>
  );
}

function Blocks({ state }: { state: AppState }) {
  const [blocks, setBlocks] = useState<Block[] | null>(null);
  const [username, setUsername] = useState("");
  const action = useAction();
  const load = () =>
    action.run(async () => {
      const items: Block[] = [];
      let cursor: string | undefined;
      do {
        const page = await state.api.blocks(cursor);
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      state.wantUsers(items.map((b) => b.userId));
      setBlocks(items);
    });
  useEffect(() => void load(), []);
  return (
    <section aria-labelledby="blocks-h">
      <h2 id="blocks-h">Blocked people</h2>
      <p class="muted">People you block cannot open a conversation with you or add you to groups.</p>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const user = await state.api.userByName(username.trim().toLowerCase());
            if (!user) throw new Error(`Nobody is called ${username.trim()}.`);
            state.users.set(user.id, user);
            await state.api.block(user.id);
            setUsername("");
            await load();
          });
        }}
      >
        <label class="grow">
          <span class="sr-only">Username to block</span>
          <input placeholder="Username to block…" value={username} onInput={(e) => setUsername(e.currentTarget.value)} required />
        </label>
        <button type="submit" disabled={action.busy}>
          Block
        </button>
      </form>
      {blocks !== null && blocks.length === 0 && <p class="muted">You have blocked nobody.</p>}
      <ul data-testid="blocks">
        {(blocks ?? []).map((b) => (
          <li key={b.userId} class="row">
            <span class="grow">{state.name(b.userId)}</span>
            <button
              type="button"
              onClick={() =>
                void action.run(async () => {
                  await state.api.unblock(b.userId);
                  await load();
                })
              }
            >
              Unblock
            </button>
          </li>
        ))}
      </ul>
      <ErrorLine error={action.error} />
    </section>
  );
}
