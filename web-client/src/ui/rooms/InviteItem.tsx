/** One invite in the room list: who invited, and Join / Decline with progress and errors. */
import { useState } from "preact/hooks";
import { client, selectedRoomId } from "../../state/app";
import { acceptInvite } from "../../rooms/create";
import type { RoomSummary } from "../../rooms/summary";
import { errorMessage } from "../../rooms/errors";
import { Avatar } from "./Avatar";

export function InviteItem({ room }: { room: RoomSummary }) {
  const [busy, setBusy] = useState<"join" | "decline" | null>(null);
  const [error, setError] = useState("");
  const run = async (action: "join" | "decline") => {
    const matrix = client.value;
    if (!matrix) return;
    setBusy(action);
    setError("");
    try {
      if (action === "join") {
        await acceptInvite(matrix, room.roomId);
        selectedRoomId.value = room.roomId;
      } else {
        await matrix.leave(room.roomId);
      }
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(null);
    }
  };
  // The buttons are named exactly "Join"/"Decline"; which room they belong to is their description.
  const nameId = `invite-name-${room.roomId}`;
  const errorId = `invite-error-${room.roomId}`;
  const describedBy = error ? `${nameId} ${errorId}` : nameId;
  return (
    <li class="invite-item">
      <div class="invite-head">
        <Avatar name={room.name} mxc={room.avatarMxc} />
        <span class="room-item-text">
          <span class="room-item-name" id={nameId}>{room.name}</span>
          <span class="room-item-preview">{room.invitedBy ? `Invited by ${room.invitedBy}` : "Invitation"}</span>
        </span>
      </div>
      <div class="invite-actions">
        <button type="button" class="primary" disabled={busy !== null} aria-describedby={describedBy} onClick={() => run("join")}>
          {busy === "join" ? "Joining…" : "Join"}
        </button>
        <button type="button" disabled={busy !== null} aria-describedby={describedBy} onClick={() => run("decline")}>
          {busy === "decline" ? "Declining…" : "Decline"}
        </button>
      </div>
      {error && <p id={errorId} class="error-text" role="alert">{error}</p>}
    </li>
  );
}
