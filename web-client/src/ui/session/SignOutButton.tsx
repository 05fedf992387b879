/**
 * The header's "Sign out": asks first, in a dialog, because signing out deletes this
 * device's encryption keys.  When encrypted history would become unreadable (no active
 * key backup), says so and offers "Set up secure backup" next to "Sign out anyway".
 */
import { useEffect, useState } from "preact/hooks";
import { client, panel } from "../../state/app";
import { signOut } from "../../session/session";
import { losesEncryptedHistory, readSignOutRisk } from "../../crypto/signOutRisk";
import { Dialog } from "../Dialog";

export function SignOutButton() {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <button type="button" onClick={() => setAsking(true)}>
        Sign out
      </button>
      {asking && <SignOutDialog onClose={() => setAsking(false)} />}
    </>
  );
}

function SignOutDialog(props: { onClose: () => void }) {
  // null while the backup state is read: no button until the answer is known, so a
  // quick click cannot skip the warning.
  const [atRisk, setAtRisk] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const matrix = client.value;
    if (!matrix) return setAtRisk(false);
    let live = true;
    void readSignOutRisk(matrix)
      .then((risk) => live && setAtRisk(losesEncryptedHistory(risk)))
      // Unknown backup state: warn rather than risk the keys silently.
      .catch(() => live && setAtRisk(true));
    return () => {
      live = false;
    };
  }, []);
  const confirm = () => {
    setBusy(true);
    void signOut();
  };
  const openBackup = () => {
    props.onClose();
    panel.value = { kind: "settings" };
  };
  return (
    <Dialog title="Sign out?" onClose={props.onClose}>
      {atRisk === null ? (
        <p role="status">Checking your encryption backup…</p>
      ) : atRisk ? (
        <>
          <p role="alert">
            This device holds the only keys to your encrypted messages and no secure backup is active. After signing
            out, your encrypted history will be unreadable on this device.
          </p>
          <div class="dialog-actions">
            <button type="button" class="primary" onClick={openBackup}>
              Set up secure backup
            </button>
            <button type="button" class="danger" disabled={busy} onClick={confirm}>
              Sign out anyway
            </button>
          </div>
        </>
      ) : (
        <>
          <p>You will need your password to sign in again on this device.</p>
          <div class="dialog-actions">
            <button type="button" onClick={props.onClose}>
              Cancel
            </button>
            <button type="button" class="primary" disabled={busy} onClick={confirm}>
              Sign out
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
