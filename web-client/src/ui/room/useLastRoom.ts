/**
 * Reopens, at start, the room that was open last time (if the account is still in
 * it), and remembers the open room from then on.  A room opened first by something
 * else (a notification, a link) wins.
 */
import { useEffect, useRef } from "preact/hooks";
import type { MatrixClient } from "matrix-js-sdk";
import { roomsRevision, selectedRoomId, syncState } from "../../state/app";
import { readLastRoom, reopenDecision, writeLastRoom } from "../../rooms/lastRoom";

export function useLastRoom(matrix: MatrixClient): void {
  const me = matrix.getUserId()!;
  const decided = useRef(false);
  const revision = roomsRevision.value;
  const sync = syncState.value;
  const open = selectedRoomId.value;

  useEffect(() => {
    if (decided.current) return;
    const stored = readLastRoom(me);
    if (open !== null || !stored) {
      decided.current = true;
      return;
    }
    // The rooms come from the sync store, then from the server: the room may be known only later.
    const decision = reopenDecision(matrix.getRoom(stored)?.getMyMembership(), sync === "PREPARED" || sync === "SYNCING");
    if (decision === "wait") return;
    decided.current = true;
    if (decision === "open") selectedRoomId.value = stored;
    else writeLastRoom(me, null);
  }, [revision, sync, open]);

  useEffect(() => {
    if (decided.current) writeLastRoom(me, open);
  }, [open]);

  // The next account to sign in starts with no room open.
  useEffect(() => () => void (selectedRoomId.value = null), []);
}
