/**
 * How a notification click in the service worker opens a room: a running app gets a
 * message {type: "open-room", roomId}; a closed one is opened at /#/room/<roomId>.
 */
import { selectedRoomId } from "../state/app";

export const OPEN_ROOM_MESSAGE = "open-room";
const ROOM_HASH = /^#\/room\/(.+)$/;

export function roomUrl(roomId: string): string {
  return `/#/room/${encodeURIComponent(roomId)}`;
}

export function roomIdFromHash(hash: string): string | null {
  const match = ROOM_HASH.exec(hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

/** Opens the room named in the URL (then drops the hash) and listens to the service worker. */
export function followRoomLinks(): () => void {
  const fromHash = roomIdFromHash(location.hash);
  if (fromHash) {
    selectedRoomId.value = fromHash;
    history.replaceState(null, "", location.pathname + location.search);
  }
  const onMessage = (event: MessageEvent) => {
    const data = event.data as { type?: string; roomId?: unknown } | null;
    if (data?.type === OPEN_ROOM_MESSAGE && typeof data.roomId === "string") selectedRoomId.value = data.roomId;
  };
  const container = typeof navigator !== "undefined" ? navigator.serviceWorker : undefined;
  container?.addEventListener("message", onMessage);
  return () => container?.removeEventListener("message", onMessage);
}
