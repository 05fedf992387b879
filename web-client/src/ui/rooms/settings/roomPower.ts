/**
 * What the settings tabs share: the room, the signed-in user, the current power
 * levels, and the write that replaces them.  Reading `roomsRevision` re-renders a
 * tab when room state changes (also when another admin changes it meanwhile).
 */
import { EventType, type MatrixClient, type Room } from "matrix-js-sdk";
import { client, roomsRevision } from "../../../state/app";
import { roomCreators, type PowerLevelsContent, type RoomPowerLevels } from "../../../rooms/powerLevels";

export interface RoomContext {
  matrix: MatrixClient;
  room: Room;
  me: string;
  levels: RoomPowerLevels;
}

export function useRoomContext(roomId: string): RoomContext | null {
  void roomsRevision.value;
  const matrix = client.value;
  const room = matrix?.getRoom(roomId);
  if (!matrix || !room) return null;
  return { matrix, room, me: matrix.getUserId() ?? "", levels: currentLevels(room) };
}

export function currentLevels(room: Room): RoomPowerLevels {
  const content = (room.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent() ?? {}) as PowerLevelsContent;
  const create = room.currentState.getStateEvents(EventType.RoomCreate, "");
  return { ...content, creators: roomCreators(create?.getSender(), create?.getContent() ?? {}) };
}

/** Sends a whole new m.room.power_levels content (the event replaces the previous one). */
export function sendLevels(context: RoomContext, content: PowerLevelsContent): Promise<unknown> {
  return context.matrix.sendStateEvent(context.room.roomId, EventType.RoomPowerLevels, content, "");
}

/** A room state value, e.g. stateContent(room, "m.room.topic").topic. */
export function stateContent(room: Room, type: string): Record<string, unknown> {
  return room.currentState.getStateEvents(type, "")?.getContent() ?? {};
}
