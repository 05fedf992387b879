/**
 * Shown instead of the app while another tab runs this session (session/tabLock.ts):
 * one tab at a time keeps the encryption store safe.  "Use here" moves it to this tab.
 */
import { useState } from "preact/hooks";
import { openInOtherTab, useSessionHere } from "../../session/session";
import "./session.css";

export function OpenInOtherTab() {
  const [moving, setMoving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const session = openInOtherTab.value;
  if (!session) return null;
  const useHere = () => {
    setMoving(true);
    setError(null);
    useSessionHere()
      .catch((failure: unknown) => setError(failure instanceof Error ? failure.message : String(failure)))
      .finally(() => setMoving(false));
  };
  return (
    <main class="other-tab">
      <section class="other-tab-card" aria-labelledby="other-tab-title">
        <h1 id="other-tab-title">This account is open in another tab</h1>
        <p>{session.userId} can be used in one tab at a time.</p>
        <button type="button" class="primary" onClick={useHere} disabled={moving}>
          {moving ? "Moving here…" : "Use here"}
        </button>
        {error && (
          <p class="error-text" role="alert">
            {error}
          </p>
        )}
      </section>
    </main>
  );
}
