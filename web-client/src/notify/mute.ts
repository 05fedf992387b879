/**
 * Per-room mute as a push rule, so it holds on every device and for Web Push too:
 * a `room`-kind rule whose rule_id is the room ID and whose actions are
 * ["dont_notify"] (spec: client-server-api/modules/push.md#push-rules, "room rules").
 */
import { PushRuleActionName, type MatrixClient } from "matrix-js-sdk";
import { client } from "../state/app";

export function isRoomMuted(roomId: string, matrix: MatrixClient | null = client.value): boolean {
  const rule = matrix?.getRoomPushRule("global", roomId);
  if (!rule || rule.enabled === false) return false;
  // An empty action list means "do nothing" (newer spec); dont_notify is the older spelling.
  return rule.actions.length === 0 || rule.actions.includes(PushRuleActionName.DontNotify);
}

export async function setRoomMuted(roomId: string, muted: boolean, matrix: MatrixClient | null = client.value): Promise<void> {
  if (!matrix) throw new Error("Not signed in");
  // The SDK replaces a non-muting room rule and refreshes client.pushRules afterwards.
  await matrix.setRoomMutePushRule("global", roomId, muted);
}
