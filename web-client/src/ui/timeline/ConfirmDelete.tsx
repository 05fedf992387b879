/** "Delete this message?" — a redaction cannot be undone, so it is confirmed first. */
import type { MatrixEvent } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { client } from "../../state/app";
import { Dialog } from "../Dialog";

export function ConfirmDelete(props: { event: MatrixEvent; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    const matrix = client.value;
    if (!matrix) return;
    setBusy(true);
    try {
      await matrix.redactEvent(props.event.getRoomId()!, props.event.getId()!);
      props.onClose();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
      setBusy(false);
    }
  };
  return (
    <Dialog title="Delete message?" onClose={props.onClose}>
      <p>The message will be removed for everyone in the room. This cannot be undone.</p>
      {error && <p class="error-text" role="alert">Could not delete: {error}</p>}
      <div class="dialog-actions">
        <button type="button" onClick={props.onClose} autoFocus>Cancel</button>
        <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>Delete</button>
      </div>
    </Dialog>
  );
}
