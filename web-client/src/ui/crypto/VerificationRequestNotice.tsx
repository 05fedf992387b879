/**
 * An in-room verification request (an m.room.message with msgtype
 * m.key.verification.request; spec: client-server-api/modules/end_to_end_encryption.md#key-verification-framework)
 * shown as a notice, "Alice wants to verify Bob", with the request's state when this
 * session tracks it, instead of its fallback body meant for clients without verification.
 */
import type { MatrixEvent } from "matrix-js-sdk";
import { useEffect, useReducer } from "preact/hooks";
import { CryptoEvent, VerificationRequestEvent } from "matrix-js-sdk/lib/crypto-api/index";
import { client } from "../../state/app";
import { describePhase } from "../../crypto/verification";

export const VERIFICATION_REQUEST_MSGTYPE = "m.key.verification.request";

export function VerificationRequestNotice(props: { event: MatrixEvent; senderName: string }) {
  const { event } = props;
  const matrix = client.value;
  const roomId = event.getRoomId() ?? "";
  const to = String(event.getContent().to ?? "");
  const me = matrix?.getUserId();
  const toName = to === me ? "you" : (matrix?.getRoom(roomId)?.getMember(to)?.name ?? to);
  const sender = event.getSender() ?? "";
  const other = sender === me ? to : sender;
  const tracked = matrix?.getCrypto()?.findVerificationRequestDMInProgress(roomId, other);
  const request = tracked?.transactionId === event.getId() ? tracked : undefined;
  const [, rerender] = useReducer((count: number) => count + 1, 0);
  useEffect(() => {
    // The crypto learns of the request after the timeline shows its event.
    if (request || !matrix) return;
    const update = () => rerender(undefined);
    matrix.on(CryptoEvent.VerificationRequestReceived, update);
    return () => void matrix.off(CryptoEvent.VerificationRequestReceived, update);
  }, [matrix, request]);
  useEffect(() => {
    if (!request) return;
    const update = () => rerender(undefined);
    request.on(VerificationRequestEvent.Change, update);
    return () => void request.off(VerificationRequestEvent.Change, update);
  }, [request]);
  const who = sender === me ? "You" : props.senderName;
  return (
    <p class="message-body notice verification-notice">
      {who} {sender === me ? "want" : "wants"} to verify {toName}
      {request && <span class="verification-state"> · {describePhase(request)}</span>}
    </p>
  );
}
