/**
 * The /createRoom requests of the "New room" and "Start chat" panels, and the
 * m.direct bookkeeping of a new DM.  spec: client-server-api/_index.md#creation
 */
import { EventType, Preset, Visibility, type ICreateRoomOpts, type MatrixClient } from "matrix-js-sdk";
import { directRoomsWith, readDirect, withDirectRoom } from "./direct";

export const MEGOLM = "m.megolm.v1.aes-sha2";

export interface NewRoomForm {
  name: string;
  topic: string;
  visibility: "private" | "public";
  /** Local part of the published address (#alias:server), public rooms only. */
  alias: string;
  encrypted: boolean;
  invite: string[];
}

const encryptionState = { type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } };

export function createRoomOptions(form: NewRoomForm): ICreateRoomOpts {
  const isPublic = form.visibility === "public";
  const options: ICreateRoomOpts = {
    name: form.name.trim() || undefined,
    topic: form.topic.trim() || undefined,
    preset: isPublic ? Preset.PublicChat : Preset.PrivateChat,
    visibility: isPublic ? Visibility.Public : Visibility.Private,
    invite: form.invite,
    // Public rooms are readable by anyone who can join, so they are never encrypted here.
    initial_state: !isPublic && form.encrypted ? [encryptionState] : [],
  };
  const alias = aliasLocalpart(form.alias);
  if (isPublic && alias) options.room_alias_name = alias;
  return options;
}

export function dmOptions(userId: string, encrypted: boolean): ICreateRoomOpts {
  return {
    preset: Preset.TrustedPrivateChat,
    visibility: Visibility.Private,
    is_direct: true,
    invite: [userId],
    initial_state: encrypted ? [encryptionState] : [],
  };
}

/** "#My Room:server" → "my-room": the localpart the server prefixes and suffixes. */
export function aliasLocalpart(input: string): string {
  return input
    .trim()
    .replace(/^#/, "")
    .replace(/:.*$/, "")
    .toLowerCase()
    .replace(/\s+/g, "-")
    .replace(/[^a-z0-9._=\-/]/g, "");
}

/** User IDs typed into a box, separated by commas, spaces or newlines; each must look like @user:server. */
export function parseUserIds(input: string): { ids: string[]; invalid: string[] } {
  const parts = input.split(/[\s,]+/).filter(Boolean);
  const ids: string[] = [];
  const invalid: string[] = [];
  for (const part of parts) (/^@[^:\s]+:\S+$/.test(part) ? ids : invalid).push(part);
  return { ids: [...new Set(ids)], invalid };
}

/** An existing DM with the user that one is still in (joined or invited), if any. */
export function existingDm(matrix: MatrixClient, userId: string): string | undefined {
  const direct = readDirect(matrix.getAccountData(EventType.Direct)?.getContent());
  return directRoomsWith(direct, userId)
    .slice()
    .reverse()
    .find((roomId) => {
      const membership = matrix.getRoom(roomId)?.getMyMembership();
      if (membership !== "join" && membership !== "invite") return false;
      // A DM the other person has left is not worth reusing.
      const theirs = matrix.getRoom(roomId)?.getMember(userId)?.membership;
      return theirs === "join" || theirs === "invite";
    });
}

/** Records roomId as a DM with userId in m.direct (done by both sides: on creation and on joining an invite). */
export async function markDirect(matrix: MatrixClient, userId: string, roomId: string): Promise<void> {
  const direct = readDirect(matrix.getAccountData(EventType.Direct)?.getContent());
  const updated = withDirectRoom(direct, userId, roomId);
  if (updated !== direct) await matrix.setAccountData(EventType.Direct, updated);
}

export async function startDm(matrix: MatrixClient, userId: string, encrypted: boolean): Promise<string> {
  const existing = existingDm(matrix, userId);
  if (existing) return existing;
  const { room_id: roomId } = await matrix.createRoom(dmOptions(userId, encrypted));
  await markDirect(matrix, userId, roomId);
  return roomId;
}

/** Joins an invite; a DM invite (is_direct) is also recorded in one's own m.direct. */
export async function acceptInvite(matrix: MatrixClient, roomId: string): Promise<void> {
  const inviter = matrix.getRoom(roomId)?.getDMInviter();
  await matrix.joinRoom(roomId);
  if (inviter) await markDirect(matrix, inviter, roomId);
}
