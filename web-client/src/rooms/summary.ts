/**
 * What the room list shows for each room, read from matrix-js-sdk's Room objects:
 * name (the other person's for a DM), preview of the latest event, unread counts,
 * last activity, invite details.  Recomputed when `roomsRevision` changes.
 */
import { EventType, NotificationCountType, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import { directPartners, readDirect } from "./direct";
import { isPreviewable, previewText, type PreviewSource } from "./preview";

export interface RoomSummary {
  roomId: string;
  name: string;
  isDirect: boolean;
  /** For a DM, the other person's user ID. */
  partnerId?: string;
  avatarMxc?: string;
  preview: string;
  lastActive: number;
  unread: number;
  highlights: number;
  membership: string;
  /** For an invite: the inviter's display name (or ID). */
  invitedBy?: string;
  tags: string[];
}

/** How far back to look for an event worth previewing (reactions and edits are skipped). */
const PREVIEW_LOOKBACK = 30;

export function summarizeRooms(matrix: MatrixClient): RoomSummary[] {
  const me = matrix.getUserId() ?? "";
  const partners = directPartners(readDirect(matrix.getAccountData(EventType.Direct)?.getContent()));
  return matrix
    .getRooms()
    .filter((room) => ["join", "invite"].includes(room.getMyMembership()))
    .map((room) => summarizeRoom(room, me, partners));
}

/** A member's display name; an inviter often isn't in an invite's stripped state, so also the SDK's user cache. */
function personName(room: Room, userId: string): string {
  const member = room.getMember(userId);
  if (member?.name && member.name !== userId) return member.name;
  return room.client.getUser(userId)?.displayName || userId;
}

export function summarizeRoom(room: Room, me: string, partners: Map<string, string>): RoomSummary {
  const membership = room.getMyMembership();
  const inviter = membership === "invite" ? room.getDMInviter() : undefined;
  let partnerId = partners.get(room.roomId) ?? inviter ?? flaggedDirectPartner(room, me);
  const isDirect = partnerId !== undefined;
  if (isDirect && (!partnerId || partnerId === me)) partnerId = room.guessDMUserId();
  const myMember = room.getMember(me);
  const inviteEvent = membership === "invite" ? myMember?.events.member : undefined;
  const invitedById = inviteEvent?.getSender();
  return {
    roomId: room.roomId,
    name: roomDisplayName(room, me, partnerId, invitedById),
    isDirect,
    partnerId,
    avatarMxc: roomAvatarMxc(room, partnerId),
    preview: latestPreview(room, me),
    lastActive: room.getLastActiveTimestamp() > 0 ? room.getLastActiveTimestamp() : (inviteEvent?.getTs() ?? 0),
    unread: room.getUnreadNotificationCount(NotificationCountType.Total),
    highlights: room.getUnreadNotificationCount(NotificationCountType.Highlight),
    membership,
    invitedBy: invitedById ? personName(room, invitedById) : undefined,
    tags: Object.keys(room.tags ?? {}),
  };
}

/**
 * A two-person room whose invite was flagged is_direct (spec: modules/dm.md) is a DM
 * even when m.direct doesn't list it (e.g. joined from another client): the flag
 * stays on the invite event, or on the join's prev_content.
 */
function flaggedDirectPartner(room: Room, me: string): string | undefined {
  const members = room.getMembers().filter((member) => member.membership === "join" || member.membership === "invite");
  if (members.length !== 2) return undefined;
  const flagged = members.some((member) => {
    const event = member.events.member;
    return event?.getContent().is_direct === true || event?.getPrevContent().is_direct === true;
  });
  return flagged ? members.find((member) => member.userId !== me)?.userId : undefined;
}

function roomDisplayName(room: Room, me: string, partnerId: string | undefined, invitedById: string | undefined): string {
  // A DM keeps the person's name even when the room itself has none.
  const explicit = room.currentState.getStateEvents("m.room.name", "")?.getContent().name;
  if (typeof explicit === "string" && explicit.trim()) return explicit;
  if (partnerId && partnerId !== me) {
    const member = room.getMember(partnerId);
    if (member?.name) return member.name;
  }
  // An invite's stripped state often lacks the other members, so the SDK would call it
  // "Empty room": the inviter is the one name known (spec: client-server-api/_index.md#stripped-state).
  const alias = room.getCanonicalAlias();
  if (invitedById && invitedById !== me && !alias) return personName(room, invitedById);
  return room.name || room.getDefaultRoomName(me);
}

export function roomAvatarMxc(room: Room, partnerId: string | undefined): string | undefined {
  const own = room.currentState.getStateEvents("m.room.avatar", "")?.getContent().url;
  if (typeof own === "string" && own) return own;
  if (partnerId) return room.getMember(partnerId)?.getMxcAvatarUrl() ?? undefined;
  return undefined;
}

function latestPreview(room: Room, me: string): string {
  const events = room.getLiveTimeline().getEvents();
  for (let index = events.length - 1, seen = 0; index >= 0 && seen < PREVIEW_LOOKBACK; index--, seen++) {
    const source = previewSource(events[index]!, room, me);
    if (isPreviewable(source)) return previewText(source);
  }
  return "";
}

export function previewSource(event: MatrixEvent, room: Room, me: string): PreviewSource {
  const sender = event.getSender() ?? "";
  const stateKey = event.getStateKey();
  const relation = event.getRelation()?.rel_type;
  return {
    type: event.getType(),
    content: event.getContent(),
    senderName: sender === me ? "You" : (room.getMember(sender)?.name ?? sender),
    stateKeyName: stateKey ? (stateKey === me ? "You" : (room.getMember(stateKey)?.name ?? stateKey)) : undefined,
    prevMembership: event.getPrevContent().membership,
    redacted: event.isRedacted(),
    undecryptable: event.isDecryptionFailure() || (event.isEncrypted() && event.getType() === "m.room.encrypted"),
    relationOnly: relation === "m.replace" || relation === "m.annotation" || event.getType() === "m.reaction",
    initialSetup: isInitialSetup(event, room),
  };
}

/** State that createRoom sends right after m.room.create, within this long of it. */
const CREATION_WINDOW_MS = 60_000;
const SETUP_TYPES = new Set(["m.room.name", "m.room.topic", "m.room.avatar", "m.room.encryption", "m.room.member"]);

/**
 * A state event the room's creator sent while creating it: the first of its kind (no
 * prev_content), close to the m.room.create event; for members only the creator's own join.
 */
function isInitialSetup(event: MatrixEvent, room: Room): boolean {
  if (!event.isState() || !SETUP_TYPES.has(event.getType())) return false;
  const create = room.currentState.getStateEvents("m.room.create", "");
  if (!create || event.getSender() !== create.getSender()) return false;
  if (event.getTs() - create.getTs() > CREATION_WINDOW_MS) return false;
  if (Object.keys(event.getPrevContent()).length > 0) return false;
  if (event.getType() === "m.room.member") return event.getStateKey() === event.getSender() && event.getContent().membership === "join";
  return true;
}

/** Invites first (newest first), then the rest by latest activity. */
export function sortSummaries(rooms: RoomSummary[]): RoomSummary[] {
  return [...rooms].sort((a, b) => {
    const invite = Number(b.membership === "invite") - Number(a.membership === "invite");
    if (invite) return invite;
    const favourite = Number(b.tags.includes("m.favourite")) - Number(a.tags.includes("m.favourite"));
    if (favourite) return favourite;
    const low = Number(a.tags.includes("m.lowpriority")) - Number(b.tags.includes("m.lowpriority"));
    if (low) return low;
    return b.lastActive - a.lastActive;
  });
}

/** Case- and accent-insensitive substring match on the name (and the DM partner's ID). */
export function filterSummaries(rooms: RoomSummary[], query: string): RoomSummary[] {
  const needle = fold(query.trim());
  if (!needle) return rooms;
  return rooms.filter((room) => fold(room.name).includes(needle) || (room.partnerId !== undefined && fold(room.partnerId).includes(needle)));
}

function fold(text: string): string {
  return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/** The first letter of a name for the avatar fallback ("#general" → "G", "@bob:hs" → "B"). */
export function initial(name: string): string {
  const match = name.replace(/^[#@!+]/, "").match(/\p{L}|\p{N}/u);
  return (match?.[0] ?? "?").toUpperCase();
}
