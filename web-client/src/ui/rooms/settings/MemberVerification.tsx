/**
 * Another member's identity in an encrypted room: "Verified" once this user has
 * cross-signed theirs, otherwise a "Verify" button that starts emoji verification
 * (crypto/verification.ts) and opens its panel.  Nothing is shown in unencrypted
 * rooms or while encryption is not running.
 */
import { useEffect, useState } from "preact/hooks";
import { EventType, type MatrixClient, type Room } from "matrix-js-sdk";
import { CryptoEvent, type UserVerificationStatus } from "matrix-js-sdk/lib/crypto-api/index";
import { client } from "../../../state/app";
import { cryptoStartup } from "../../../matrix/client";
import { cryptoStatus } from "../../../crypto/status";
import { startUserVerification } from "../../../crypto/verification";
import { directRoomsWith, readDirect } from "../../../rooms/direct";
import { errorMessage } from "../../../rooms/errors";
import "../rooms.css";

/** What this session knows of a user's identity; null until read (or without crypto). */
export function useUserTrust(matrix: MatrixClient | null, userId: string, cryptoRunning: boolean): UserVerificationStatus | null {
  const [trust, setTrust] = useState<UserVerificationStatus | null>(null);
  useEffect(() => {
    const crypto = matrix?.getCrypto();
    if (!matrix || !crypto || !cryptoRunning) return setTrust(null);
    let live = true;
    const read = () => void crypto.getUserVerificationStatus(userId).then((status) => live && setTrust(status), () => undefined);
    // Emitted for any user whose trust changes, e.g. when a verification completes;
    // KeysChanged covers their identity first becoming known.
    const onTrust = (changed: string) => changed === userId && read();
    matrix.on(CryptoEvent.UserTrustStatusChanged, onTrust);
    matrix.on(CryptoEvent.KeysChanged, read);
    read();
    return () => {
      live = false;
      matrix.off(CryptoEvent.UserTrustStatusChanged, onTrust);
      matrix.off(CryptoEvent.KeysChanged, read);
    };
  }, [matrix, userId, cryptoRunning]);
  return trust;
}

/**
 * Where to send the request: the spec says a DM between the two (spec:
 * client-server-api/modules/end_to_end_encryption.md#key-verification-framework),
 * so this room if it is one, another joined DM with them if there is one, else this
 * shared room, which the spec also allows.
 */
export function verificationRoomFor(matrix: MatrixClient, room: Room, userId: string): string {
  const direct = directRoomsWith(readDirect(matrix.getAccountData(EventType.Direct)?.getContent()), userId);
  if (direct.includes(room.roomId)) return room.roomId;
  const shared = direct.find((roomId) => {
    const dm = matrix.getRoom(roomId);
    return dm?.getMyMembership() === "join" && dm.getMember(userId)?.membership === "join" && dm.hasEncryptionStateEvent();
  });
  return shared ?? room.roomId;
}

/** Why "Verify" cannot be used yet, or null when it can. */
function verifyBlocker(trust: UserVerificationStatus | null, ownCrossSigning: boolean | undefined, name: string): string | null {
  if (ownCrossSigning === undefined) return "Encryption is starting…";
  if (!ownCrossSigning) return "Set up secure backup in Settings first: it creates the identity you verify people with.";
  if (!trust) return "Reading their encryption identity…";
  if (!trust.known) return `${name} has not set up an encryption identity yet (secure backup in their settings).`;
  return null;
}

/** `compact` (the room header): nothing while "Verify" cannot be used, rather than a disabled button. */
export function MemberVerification(props: { room: Room; userId: string; name: string; compact?: boolean }) {
  const matrix = client.value;
  const cryptoRunning = cryptoStartup.value.state === "ready";
  const trust = useUserTrust(matrix, props.userId, cryptoRunning);
  const [error, setError] = useState("");
  const [starting, setStarting] = useState(false);
  if (!matrix || !cryptoRunning || !props.room.hasEncryptionStateEvent() || props.userId === matrix.getUserId()) return null;
  if (trust?.isCrossSigningVerified()) {
    return (
      <span class={props.compact ? "rooms-verified-badge compact" : "rooms-verified-badge"} title={`You verified ${props.name}'s identity`}>
        <span aria-hidden="true">✓ </span>
        <span class="rooms-verified-word">Verified</span>
      </span>
    );
  }
  const blocker = verifyBlocker(trust, cryptoStatus.value?.crossSigningReady, props.name);
  if (blocker !== null && props.compact) return null;
  const verify = async () => {
    setStarting(true);
    setError("");
    try {
      await startUserVerification(props.userId, verificationRoomFor(matrix, props.room, props.userId));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setStarting(false);
    }
  };
  return (
    <>
      <button type="button" aria-label={`Verify ${props.name}`} disabled={blocker !== null || starting} title={blocker ?? undefined}
        onClick={() => void verify()}>
        {starting ? "Starting…" : "Verify"}
      </button>
      {error && <span class="error-text" role="alert">{error}</span>}
    </>
  );
}
