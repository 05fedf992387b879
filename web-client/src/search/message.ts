/** A message as search knows it, from the server or this device's index: one shape for both. */
export interface FoundMessage {
  eventId: string;
  roomId: string;
  sender: string;
  ts: number;
  msgtype: string;
  body: string;
}
