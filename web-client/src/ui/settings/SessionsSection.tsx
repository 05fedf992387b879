/**
 * The account's sessions (devices): names, last seen time and place (IP), renaming,
 * signing out others — with user-interactive auth — and signing out everywhere.
 * spec: client-server-api/_index.md#device-management, #user-interactive-authentication-api
 */
import { useEffect, useState } from "preact/hooks";
import { Method, type IMyDevice, type MatrixClient } from "matrix-js-sdk";
import { UiaCancelled, withUia } from "../../auth/uia";
import { client } from "../../state/app";
import { signOut } from "../../session/session";
import { relativeTime } from "./relativeTime";
import { SettingsSection } from "./Section";

type Verification = "verified" | "unverified" | "unknown";

interface Session extends IMyDevice {
  verification: Verification;
}

async function loadSessions(matrix: MatrixClient): Promise<Session[]> {
  const { devices } = await matrix.getDevices();
  const crypto = matrix.getCrypto();
  const userId = matrix.getUserId() ?? "";
  const withState = await Promise.all(
    devices.map(async (device): Promise<Session> => {
      let verification: Verification = "unknown";
      try {
        const status = await crypto?.getDeviceVerificationStatus(userId, device.device_id);
        // Verified = signed by the user's cross-signing key, as other clients show it
        // (isVerified() also counts this session's trust in itself).
        if (status) verification = status.crossSigningVerified ? "verified" : "unverified";
      } catch {
        // Crypto not ready or the device has no keys: shown as unknown.
      }
      return { ...device, verification };
    }),
  );
  const own = matrix.getDeviceId();
  // This session first, then the most recently seen.
  return withState.sort((a, b) => Number(b.device_id === own) - Number(a.device_id === own) || (b.last_seen_ts ?? 0) - (a.last_seen_ts ?? 0));
}

export function SessionsSection() {
  const matrix = client.value!;
  const ownDeviceId = matrix.getDeviceId();
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmEverywhere, setConfirmEverywhere] = useState(false);
  const [message, setMessage] = useState<{ text: string; error?: boolean } | null>(null);

  const refresh = () =>
    loadSessions(matrix)
      .then((list) => {
        setSessions(list);
        setLoadError(null);
      })
      .catch((error: Error) => setLoadError(error.message || "Could not load the sessions"));

  useEffect(() => void refresh(), []);

  const deleteDevices = async (deviceIds: string[]) => {
    setBusy(true);
    setMessage(null);
    try {
      // The server confirms it is the user (UIA): auth/uia.ts asks for what it wants.
      await withUia(matrix, (auth) => matrix.deleteMultipleDevices(deviceIds, auth ?? undefined));
      setMessage({ text: deviceIds.length === 1 ? "Session signed out" : `${deviceIds.length} sessions signed out` });
      await refresh();
    } catch (error) {
      if (error instanceof UiaCancelled) return;
      setMessage({ text: (error as Error).message || "Could not sign out the session", error: true });
    } finally {
      setBusy(false);
    }
  };

  const others = (sessions ?? []).filter((s) => s.device_id !== ownDeviceId).map((s) => s.device_id);

  const signOutEverywhere = async () => {
    setBusy(true);
    try {
      // The SDK has no call for this endpoint. spec: client-server-api/_index.md#post_matrixclientv3logoutall
      await matrix.http.authedRequest(Method.Post, "/logout/all");
    } catch (error) {
      setBusy(false);
      setMessage({ text: (error as Error).message || "Could not sign out everywhere", error: true });
      return;
    }
    // Every token, ours included, is gone: clear this browser's session too.
    await signOut();
  };

  return (
    <SettingsSection id="settings-sessions" title="Sessions">
      {loadError && <p class="error-text" role="alert">{loadError}</p>}
      {!sessions && !loadError && <p class="settings-hint">Loading sessions…</p>}
      {sessions && (
        <ul class="sessions">
          {sessions.map((session) => (
            <SessionItem
              key={session.device_id}
              matrix={matrix}
              session={session}
              current={session.device_id === ownDeviceId}
              busy={busy}
              onRenamed={refresh}
              onSignOut={() => void deleteDevices([session.device_id])}
            />
          ))}
        </ul>
      )}
      {message && <p role="status" class={message.error ? "error-text" : "settings-hint"}>{message.text}</p>}
      <div class="settings-row">
        <button type="button" class="danger" disabled={busy || others.length === 0} onClick={() => void deleteDevices(others)}>
          Sign out of all other sessions
        </button>
        {confirmEverywhere ? (
          <span class="settings-confirm" role="group" aria-label="Confirm signing out everywhere">
            <span>Sign out every session, this one included?</span>
            <button type="button" class="danger" disabled={busy} onClick={() => void signOutEverywhere()}>Yes, sign out everywhere</button>
            <button type="button" onClick={() => setConfirmEverywhere(false)}>Cancel</button>
          </span>
        ) : (
          <button type="button" class="danger" disabled={busy} onClick={() => setConfirmEverywhere(true)}>Sign out everywhere</button>
        )}
      </div>
    </SettingsSection>
  );
}

function SessionItem(props: {
  matrix: MatrixClient;
  session: Session;
  current: boolean;
  busy: boolean;
  onRenamed: () => void;
  onSignOut: () => void;
}) {
  const { session } = props;
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(session.display_name ?? "");
  const [error, setError] = useState<string | null>(null);
  const label = session.display_name || session.device_id;

  const rename = async (event: Event) => {
    event.preventDefault();
    try {
      await props.matrix.setDeviceDetails(session.device_id, { display_name: name.trim() });
      setEditing(false);
      setError(null);
      props.onRenamed();
    } catch (e) {
      setError((e as Error).message || "Could not rename");
    }
  };

  const seen = session.last_seen_ts;
  return (
    <li class="session" aria-label={label}>
      <div class="session-main">
        {editing ? (
          <form class="settings-row" onSubmit={rename}>
            <label class="visually-hidden" for={`session-name-${session.device_id}`}>Session name</label>
            <input id={`session-name-${session.device_id}`} value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={100} />
            <button type="submit">Save</button>
            <button type="button" onClick={() => setEditing(false)}>Cancel</button>
          </form>
        ) : (
          <strong class="session-name">
            {label}
            {props.current && <span class="session-badge"> (this session)</span>}
          </strong>
        )}
        <span class="settings-hint">
          {session.device_id}
          {" · "}
          {seen ? (
            <>
              last seen <time dateTime={new Date(seen).toISOString()} title={new Date(seen).toLocaleString()}>{relativeTime(seen)}</time>
              {" "}({new Date(seen).toLocaleString()})
            </>
          ) : (
            "never seen"
          )}
          {session.last_seen_ip && <> · {session.last_seen_ip}</>}
          {session.verification !== "unknown" && (
            <> · <span class={session.verification === "verified" ? "session-verified" : "session-unverified"}>{session.verification === "verified" ? "Verified" : "Not verified"}</span></>
          )}
        </span>
        {error && <span class="error-text" role="alert">{error}</span>}
      </div>
      <div class="session-actions">
        {!editing && (
          <button type="button" onClick={() => setEditing(true)} aria-label={`Rename ${label}`}>Rename</button>
        )}
        {!props.current && (
          <button type="button" class="danger" disabled={props.busy} onClick={props.onSignOut} aria-label={`Sign out ${label}`}>
            Sign out
          </button>
        )}
      </div>
    </li>
  );
}
