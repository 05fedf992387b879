/**
 * The open room: header (name, topic, the DM partner's presence, "Room settings"; a
 * "Back" button on phone-sized screens), the timeline, who is typing, the composer.
 * Read receipts are sent from here, only while the page can be read (receipts/readPolicy.ts).
 */
import { useEffect, useRef } from "preact/hooks";
import { EventType, type MatrixClient, type Room } from "matrix-js-sdk";
import { directPartners, readDirect } from "../../rooms/direct";
import { client, panel, roomsRevision, selectedRoomId } from "../../state/app";
import { roomAvatarMxc } from "../../rooms/summary";
import { Avatar } from "../rooms/Avatar";
import { watchReadReceipts } from "../../receipts/readPolicy";
import { useDropAndPaste } from "../media/dropAndPaste";
import { Timeline } from "../timeline/Timeline";
import { TypingIndicator } from "../timeline/TypingIndicator";
import { Composer } from "../timeline/Composer";
import { PresenceDot } from "../timeline/PresenceDot";
import { resetComposerState } from "../timeline/composerState";
import { MemberVerification } from "../rooms/settings/MemberVerification";
import "./room-view.css";

/** The other person of a direct chat, from m.direct account data. spec: client-server-api/modules/dm.md */
export function dmPartner(matrix: MatrixClient, roomId: string): string | null {
  const content = readDirect(matrix.getAccountData(EventType.Direct)?.getContent());
  return directPartners(content).get(roomId) ?? null;
}

export function RoomView(props: { roomId: string }) {
  roomsRevision.value;
  const matrix = client.value!;
  const room = matrix.getRoom(props.roomId);
  const viewRef = useRef<HTMLElement>(null);
  useDropAndPaste(props.roomId, viewRef);

  useEffect(() => {
    resetComposerState();
    return resetComposerState;
  }, [props.roomId]);
  const membership = room?.getMyMembership();
  const joined = membership === "join";
  useEffect(() => (room && joined ? watchReadReceipts(matrix, room) : undefined), [matrix, room, joined]);

  if (!room) {
    return (
      <section class="room-view" ref={viewRef} aria-label="Room">
        <p class="empty-pane">This room is not available yet.</p>
      </section>
    );
  }
  const partner = dmPartner(matrix, room.roomId);
  const topic = room.currentState.getStateEvents("m.room.topic", "")?.getContent().topic as string | undefined;
  const name = room.name;

  return (
    <section class={joined ? "room-view" : "room-view not-joined"} ref={viewRef} aria-label={name}>
      <header class="room-header">
        <button type="button" class="back-button" onClick={() => (selectedRoomId.value = null)}>
          Back
        </button>
        <span class="room-avatar">
          <Avatar name={name} mxc={roomAvatarMxc(room, partner ?? undefined)} />
        </span>
        <div class="room-title">
          <h1>{name}</h1>
          {partner ? <PresenceDot userId={partner} withLabel /> : topic && <p class="room-topic">{topic}</p>}
        </div>
        {partner && joined && <MemberVerification room={room} userId={partner} name={room.getMember(partner)?.name ?? partner} compact />}
        <button type="button" onClick={() => (panel.value = { kind: "room-settings", roomId: room.roomId })}>
          Room settings
        </button>
      </header>
      {joined ? (
        <>
          <Timeline room={room} />
          <TypingIndicator room={room} />
          <Composer room={room} />
        </>
      ) : membership === "leave" || membership === "ban" ? (
        <>
          <Timeline room={room} />
          <div class="room-left" role="status">
            <p>{departureText(room, matrix.getUserId()!)}</p>
            <button type="button" class="primary" onClick={() => (selectedRoomId.value = null)}>
              Close
            </button>
          </div>
        </>
      ) : (
        <p class="empty-pane">
          {membership === "invite" ? "You are invited to this room: join it from the room list." : "You are not in this room."}
        </p>
      )}
    </section>
  );
}

/**
 * Why the signed-in user is no longer in the room, from their own membership event:
 * "You left this room", or removed / banned by someone, with the reason given.
 * spec: client-server-api/_index.md#mroommember (reason; kicks are leaves sent by another member)
 */
export function departureText(room: Room, me: string): string {
  const event = room.currentState.getMember(me)?.events.member;
  const membership = event?.getContent().membership;
  const by = event?.getSender();
  const reason = typeof event?.getContent().reason === "string" ? (event.getContent().reason as string).trim() : "";
  if (membership === "leave" && (!by || by === me)) return "You left this room";
  const byName = by ? (room.getMember(by)?.name ?? by) : "someone";
  const what = membership === "ban" ? "You were banned from this room" : "You were removed from this room";
  return `${what} by ${byName}${reason ? `: ${reason}` : ""}`;
}
