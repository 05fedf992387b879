/**
 * Turns matrix-js-sdk's events into the app's revision signals, at most once per
 * animation frame, so a burst of sync data re-renders each screen once.
 */
import {
  ClientEvent,
  MatrixEventEvent,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  UserEvent,
  type EmittedEvents,
  type MatrixClient,
} from "matrix-js-sdk";
import { roomsRevision, timelineRevision } from "../state/app";

export function watchClient(matrix: MatrixClient): () => void {
  let rooms = false;
  let timeline = false;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (rooms) roomsRevision.value++;
    if (timeline) timelineRevision.value++;
    rooms = timeline = false;
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    if (typeof requestAnimationFrame === "function" && document.visibilityState === "visible") requestAnimationFrame(flush);
    else setTimeout(flush, 16);
  };
  const onRooms = () => ((rooms = true), schedule());
  const onTimeline = () => ((timeline = true), schedule());
  const onBoth = () => ((rooms = timeline = true), schedule());

  // Only events the client re-emits can be heard here (the SDK's types say which):
  // unread counts arrive with a sync, relations with their timeline events.
  const subscriptions: [EmittedEvents, () => void][] = [
    [ClientEvent.Room, onRooms],
    [ClientEvent.DeleteRoom, onRooms],
    [ClientEvent.AccountData, onRooms],
    [ClientEvent.Sync, onBoth],
    [RoomEvent.Timeline, onBoth],
    [RoomEvent.TimelineReset, onTimeline],
    [RoomEvent.Name, onRooms],
    [RoomEvent.MyMembership, onRooms],
    [RoomEvent.Receipt, onBoth],
    [RoomEvent.Redaction, onBoth],
    [RoomEvent.LocalEchoUpdated, onBoth],
    [RoomEvent.Tags, onRooms],
    [RoomStateEvent.Events, onBoth],
    [RoomMemberEvent.Membership, onBoth],
    [RoomMemberEvent.Typing, onTimeline],
    [RoomMemberEvent.PowerLevel, onBoth],
    [MatrixEventEvent.Decrypted, onBoth],
    [MatrixEventEvent.Replaced, onTimeline],
    [UserEvent.Presence, onTimeline],
    [UserEvent.LastPresenceTs, onTimeline],
  ];
  // Each listener only notes that something changed, so it takes none of the arguments.
  for (const [event, listener] of subscriptions) matrix.on(event, listener);
  return () => {
    for (const [event, listener] of subscriptions) matrix.off(event, listener);
  };
}
