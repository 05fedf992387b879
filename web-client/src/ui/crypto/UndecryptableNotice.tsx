/**
 * What the timeline shows instead of a message this session could not decrypt: that
 * it is encrypted, why it could not be read, and what might help.
 */
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { MatrixEvent } from "matrix-js-sdk";
import { client, panel } from "../../state/app";
import { cryptoStatus, refreshCryptoStatus } from "../../crypto/status";
import { explainDecryptionFailure } from "../../crypto/decryptionFailure";
import { startOwnVerification } from "../../crypto/verification";
import { errorMessage } from "../../rooms/errors";
import "./crypto.css";

export function UndecryptableNotice(props: { event: MatrixEvent }): JSX.Element {
  const [error, setError] = useState("");
  const status = cryptoStatus.value;
  const matrix = client.value;
  useEffect(() => {
    if (!status && matrix?.getCrypto()) void refreshCryptoStatus(matrix);
  }, [status, matrix]);
  const { reason, remedy } = explainDecryptionFailure(props.event.decryptionFailureReason, {
    deviceVerified: status?.deviceVerified ?? false,
    backupExists: status?.backupOnServer != null,
  });
  const verify = () => startOwnVerification().catch((caught) => setError(errorMessage(caught)));
  return (
    <div class="undecryptable" role="note">
      <span class="undecryptable-title">
        <span aria-hidden="true">🔒 </span>Unable to decrypt this message
      </span>
      <span class="undecryptable-reason">{reason}</span>
      {remedy === "verify" && (
        <button type="button" class="link-button" onClick={() => void verify()}>Verify this session</button>
      )}
      {remedy === "restore" && (
        <button type="button" class="link-button" onClick={() => (panel.value = { kind: "settings" })}>Restore from key backup</button>
      )}
      {error && <span class="error-text">{error}</span>}
    </div>
  );
}
