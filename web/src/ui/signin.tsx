import { useState } from "preact/hooks";

import type { AppState } from "../state/app";
import { ErrorLine, useAction } from "./common";

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

function wallet(): Eip1193 | undefined {
  return (window as unknown as { ethereum?: Eip1193 }).ethereum;
}

export function SignIn({ state }: { state: AppState }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const action = useAction();
  const ethereum = wallet();

  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const user =
        mode === "login"
          ? await state.api.login(username.trim(), password)
          : await state.api.register(username.trim(), password, displayName.trim() || undefined);
      await state.signedIn(user);
    });
  };

  const walletSignIn = () =>
    void action.run(async () => {
      if (!ethereum) return;
      const [address] = (await ethereum.request({ method: "eth_requestAccounts" })) as string[];
      if (!address) throw new Error("The wallet shared no account.");
      const challenge = await state.api.walletChallenge(address);
      const signature = (await ethereum.request({ method: "personal_sign", params: [challenge.message, address] })) as string;
      await state.signedIn(await state.api.walletVerify(address, signature));
    });

  return (
    <main class="signin">
      <h1>Parley</h1>
      <div class="tabs" role="tablist" aria-label="Sign in or create an account">
        <button type="button" role="tab" aria-selected={mode === "login"} onClick={() => setMode("login")}>
          Sign in
        </button>
        <button type="button" role="tab" aria-selected={mode === "register"} onClick={() => setMode("register")}>
          Create account
        </button>
      </div>
      <form onSubmit={submit} aria-label={mode === "login" ? "Sign in" : "Create account"}>
        <label>
          Username
          <input
            name="username"
            autocomplete="username"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            required
            minLength={3}
            maxLength={32}
            pattern="[A-Za-z0-9_.\-]+"
          />
        </label>
        {mode === "register" && (
          <label>
            Display name (optional)
            <input name="displayName" value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} maxLength={64} />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === "login" ? "current-password" : "new-password"}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
            minLength={8}
            maxLength={128}
          />
        </label>
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Please wait…" : mode === "login" ? "Sign in" : "Create account"}
        </button>
        <ErrorLine error={action.error ?? state.notice} />
      </form>
      {ethereum && (
        <button type="button" class="wallet" onClick={walletSignIn} disabled={action.busy}>
          Sign in with your wallet
        </button>
      )}
    </main>
  );
}
