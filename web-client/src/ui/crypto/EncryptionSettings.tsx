/**
 * The body of the "Encryption" section of settings (the settings panel gives it its
 * heading): this session's identity and verification, secure backup (set up, or
 * restore with the recovery key), and verifying this session from another one.
 */
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { GeneratedSecretStorageKey } from "matrix-js-sdk/lib/crypto-api/index";
import { client } from "../../state/app";
import { cryptoStartup } from "../../matrix/client";
import { cryptoStatus, refreshCryptoStatus } from "../../crypto/status";
import { generateRecoveryKey, groupFingerprint, restoreFromBackup, setUpSecureBackup, type RestoreProgress } from "../../crypto/backup";
import { startOwnVerification } from "../../crypto/verification";
import { errorMessage } from "../../rooms/errors";
import "./crypto.css";

type Flow = "none" | "setup" | "restore";

export function EncryptionSettings(): JSX.Element {
  const matrix = client.value;
  const status = cryptoStatus.value;
  const [flow, setFlow] = useState<Flow>("none");
  const [error, setError] = useState("");

  // Until crypto has started (initRustCrypto runs after sign-in), look again every half second.
  useEffect(() => {
    if (!matrix || status) return;
    const look = () => matrix.getCrypto() && void refreshCryptoStatus(matrix);
    look();
    const timer = setInterval(look, 500);
    return () => clearInterval(timer);
  }, [matrix, status === null]);

  if (!matrix || !status) {
    return (
      <div class="encryption-settings">
        <p class="status-text" role="status">
          {cryptoStartup.value.state === "unavailable"
            ? `Encryption is unavailable in this browser: ${cryptoStartup.value.error ?? "unknown error"}`
            : "Encryption is starting…"}
        </p>
      </div>
    );
  }
  const backupLine = status.activeBackup
    ? `On — this session backs up its keys (version ${status.activeBackup})`
    : status.backupOnServer
      ? "Set up on your account, not yet on this session: restore with your recovery key"
      : "Not set up";
  return (
    <div class="encryption-settings">
      <dl class="encryption-facts">
        <dt>Session ID</dt>
        <dd class="fingerprint">{status.deviceId}</dd>
        <dt>Session key</dt>
        <dd class="fingerprint">{groupFingerprint(status.ed25519)}</dd>
        <dt>Cross-signing</dt>
        <dd>{status.crossSigningReady ? "Ready" : "Not set up on this session"}</dd>
        <dt>This session</dt>
        <dd>{status.deviceVerified ? <span class="ok-text">Verified</span> : "Not verified"}</dd>
        <dt>Key backup</dt>
        <dd>{backupLine}</dd>
      </dl>
      {flow === "none" && (
        <div class="encryption-actions">
          {!status.deviceVerified && (
            <button type="button" onClick={() => startOwnVerification().catch((caught) => setError(errorMessage(caught)))}>
              Verify this session with another device
            </button>
          )}
          {status.backupOnServer && (
            <button type="button" onClick={() => setFlow("restore")}>Restore from backup</button>
          )}
          <button type="button" class={status.secretStorageReady ? "" : "primary"} onClick={() => setFlow("setup")}>
            {status.secretStorageReady ? "Reset secure backup" : "Set up secure backup"}
          </button>
        </div>
      )}
      {flow === "setup" && <SetupFlow reset={status.secretStorageReady} onDone={() => setFlow("none")} />}
      {flow === "restore" && <RestoreFlow onDone={() => setFlow("none")} />}
      {error && <p class="error-text" role="alert">{error}</p>}
    </div>
  );
}

/** Password → a recovery key shown to save → confirmed saved → keys created and uploaded. */
function SetupFlow(props: { reset: boolean; onDone: () => void }) {
  const matrix = client.value!;
  const [password, setPassword] = useState("");
  const [key, setKey] = useState<GeneratedSecretStorageKey | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const [error, setError] = useState("");
  const [copied, setCopied] = useState(false);

  const generate = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      setKey(await generateRecoveryKey(matrix));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };
  const finish = async () => {
    if (!key) return;
    setBusy(true);
    setError("");
    try {
      await setUpSecureBackup(matrix, password, key);
      setDone(true);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  };
  const copy = async () => {
    await navigator.clipboard?.writeText(key?.encodedPrivateKey ?? "").then(() => setCopied(true), () => setCopied(false));
  };
  const download = () => {
    const blob = new Blob([`${key?.encodedPrivateKey ?? ""}\n`], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "recovery-key.txt";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  };

  if (done) {
    return (
      <div class="encryption-step" role="status">
        <p class="ok-text">Secure backup is set up. Keep your recovery key safe: it restores your messages on a new session.</p>
        <button type="button" onClick={props.onDone}>Done</button>
      </div>
    );
  }
  if (!key) {
    return (
      <form class="encryption-step" onSubmit={(event) => void generate(event)}>
        {props.reset && <p class="error-text">Resetting replaces your recovery key and starts a new backup; the old key stops working.</p>}
        <label>
          <span>Account password</span>
          <input type="password" autocomplete="current-password" value={password} required onInput={(event) => setPassword(event.currentTarget.value)} />
        </label>
        <div class="encryption-actions">
          <button type="submit" class="primary">Continue</button>
          <button type="button" onClick={props.onDone}>Cancel</button>
        </div>
        {error && <p class="error-text" role="alert">{error}</p>}
      </form>
    );
  }
  return (
    <div class="encryption-step">
      <p>Your recovery key. Save it somewhere safe — it is the only way to read your encrypted history if you lose all your sessions.</p>
      <output class="recovery-key" aria-label="Recovery key">{key.encodedPrivateKey}</output>
      <div class="encryption-actions">
        <button type="button" onClick={() => void copy()}>{copied ? "Copied" : "Copy"}</button>
        <button type="button" onClick={download}>Download</button>
      </div>
      <label class="check-row">
        <input type="checkbox" checked={saved} onChange={(event) => setSaved(event.currentTarget.checked)} /> I have saved my recovery key
      </label>
      <div class="encryption-actions">
        <button type="button" class="primary" disabled={!saved || busy} onClick={() => void finish()}>
          {busy ? "Setting up…" : "Set up backup"}
        </button>
        <button type="button" disabled={busy} onClick={props.onDone}>Cancel</button>
      </div>
      {error && <p class="error-text" role="alert">{error}</p>}
    </div>
  );
}

function RestoreFlow(props: { onDone: () => void }) {
  const matrix = client.value!;
  const [recoveryKey, setRecoveryKey] = useState("");
  const [progress, setProgress] = useState<RestoreProgress | null>(null);
  const [result, setResult] = useState<{ imported: number; total: number } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  const restore = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      setResult(await restoreFromBackup(matrix, recoveryKey, setProgress));
    } catch (caught) {
      setError(errorMessage(caught));
      void refreshCryptoStatus(matrix);
    } finally {
      setBusy(false);
    }
  };
  if (result) {
    return (
      <div class="encryption-step" role="status">
        <p class="ok-text">Restored {result.imported} of {result.total} keys from your backup.</p>
        <button type="button" onClick={props.onDone}>Done</button>
      </div>
    );
  }
  return (
    <form class="encryption-step" onSubmit={(event) => void restore(event)}>
      <label>
        <span>Recovery key</span>
        <input type="text" autocomplete="off" spellcheck={false} value={recoveryKey} required onInput={(event) => setRecoveryKey(event.currentTarget.value)} />
      </label>
      <div class="encryption-actions">
        <button type="submit" class="primary" disabled={busy}>{busy ? "Restoring…" : "Restore"}</button>
        <button type="button" disabled={busy} onClick={props.onDone}>Cancel</button>
      </div>
      {progress && busy && <progress max={progress.total || 1} value={progress.done} aria-label="Keys restored" />}
      {error && <p class="error-text" role="alert">{error}</p>}
    </form>
  );
}
