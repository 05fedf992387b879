/**
 * Direct messages: the m.direct account data maps a user ID to the IDs of the rooms
 * that are DMs with them (spec: client-server-api/modules/dm.md).  Pure helpers on
 * that content; summary.ts and the start-chat panel apply them to the client.
 */

export type DirectContent = Record<string, string[]>;

/** The content as given, ignoring malformed entries other clients may have written. */
export function readDirect(content: unknown): DirectContent {
  const result: DirectContent = {};
  if (!content || typeof content !== "object") return result;
  for (const [userId, rooms] of Object.entries(content as Record<string, unknown>)) {
    if (Array.isArray(rooms)) result[userId] = rooms.filter((room): room is string => typeof room === "string");
  }
  return result;
}

/** roomId → the user the DM is with. */
export function directPartners(content: DirectContent): Map<string, string> {
  const partners = new Map<string, string>();
  for (const [userId, rooms] of Object.entries(content)) for (const roomId of rooms) partners.set(roomId, userId);
  return partners;
}

/** A copy with roomId listed under userId (once). */
export function withDirectRoom(content: DirectContent, userId: string, roomId: string): DirectContent {
  const rooms = content[userId] ?? [];
  if (rooms.includes(roomId)) return content;
  return { ...content, [userId]: [...rooms, roomId] };
}

/** The DM rooms with a user, from the m.direct content, in the order written (oldest first). */
export function directRoomsWith(content: DirectContent, userId: string): string[] {
  return content[userId] ?? [];
}
