// What the screens share: the re-render subscription, the busy/error action hook and its error line.
// Its own module so that the screens and app.tsx (which imports the screens) both import it without
// an import cycle.

import { useEffect, useLayoutEffect, useState } from "preact/hooks";

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

/** The longest timer a browser keeps (about 24.8 days); a longer wait is armed again after it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Renders again every `stepMs` while `until` (epoch ms) is ahead, and once when it has passed: for
 * countdowns (a step of a second) and for states that end at a time (a step as long as the wait).
 */
export function useTickUntil(until: number | null, stepMs = 1000) {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (until === null) return;
    const left = until - Date.now();
    if (left <= 0) return;
    // At the next whole step of what is left (a countdown in seconds changes exactly then).
    const next = left % stepMs || stepMs;
    const timer = setTimeout(() => setTick((n) => n + 1), Math.min(next + 5, MAX_TIMER_MS));
    return () => clearTimeout(timer);
  });
}
