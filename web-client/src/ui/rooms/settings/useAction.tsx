/** Runs one request at a time for a control, keeping its progress and error to show. */
import { useEffect, useState } from "preact/hooks";
import { errorMessage } from "../../../rooms/errors";

export function useAction() {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const run = async (label: string, action: () => Promise<unknown>, doneText = "") => {
    setBusy(label);
    setError("");
    setDone("");
    try {
      await action();
      setDone(doneText);
      return true;
    } catch (caught) {
      setError(errorMessage(caught));
      return false;
    } finally {
      setBusy(null);
    }
  };
  return { busy, error, done, run, setError };
}

/** The error and success line under a form. */
export function ActionStatus(props: { error: string; done?: string }) {
  if (props.error) return <p class="error-text" role="alert">{props.error}</p>;
  return <p class="rooms-status-text" role="status">{props.done ?? ""}</p>;
}

/**
 * What a control shows while its change travels to the server and back through sync:
 * the value just chosen, until room state catches up (or the request fails and
 * `settle` drops it), so checkboxes and selects don't snap back meanwhile.
 */
export function useOptimistic<T>(actual: T): [T, (value: T) => void, () => void] {
  const [pending, setPending] = useState<{ value: T } | null>(null);
  useEffect(() => {
    if (pending && Object.is(pending.value, actual)) setPending(null);
  }, [actual, pending]);
  return [pending ? pending.value : actual, (value: T) => setPending({ value }), () => setPending(null)];
}
