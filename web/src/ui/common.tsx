// What the screens share: the re-render subscription, the busy/error action hook and its error line.
// Its own module so that the screens and app.tsx (which imports the screens) both import it without
// an import cycle.

import { useLayoutEffect, useState } from "preact/hooks";

import { describeError } from "../api/client";
import type { AppState } from "../state/app";

export function useRerender(state: AppState) {
  const [, setTick] = useState(0);
  // Subscribed before paint, and one render for whatever changed before the subscription.
  useLayoutEffect(() => {
    const unsubscribe = state.subscribe(() => setTick((n) => n + 1));
    setTick((n) => n + 1);
    return unsubscribe;
  }, [state]);
}

/** Runs an async action with a busy flag and an error line. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (e) {
      setError(describeError(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}
