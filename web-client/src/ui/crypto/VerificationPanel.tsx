/**
 * Interactive verification by comparing emoji (SAS; spec:
 * client-server-api/modules/end_to_end_encryption.md#short-authentication-string-sas-verification):
 * accept, start, compare the 7 emoji, confirm — and the prompt for requests from others.
 */
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  VerificationPhase,
  VerificationRequestEvent,
  VerifierEvent,
  type ShowSasCallbacks,
  type VerificationRequest,
  type Verifier,
} from "matrix-js-sdk/lib/crypto-api/index";
import { Dialog } from "../Dialog";
import { client, panel } from "../../state/app";
import {
  describePhase,
  incomingRequest,
  openVerification,
  otherParty,
  rememberAnswered,
  startOwnVerification,
  verificationRequest,
  watchVerificationRequests,
} from "../../crypto/verification";
import { refreshCryptoStatus, watchCryptoStatus } from "../../crypto/status";
import { errorMessage } from "../../rooms/errors";
import "./crypto.css";

const SAS_METHOD = "m.sas.v1";

export function VerificationPanel(props: { requestId?: string }): JSX.Element {
  const request = verificationRequest(props.requestId);
  return (
    <Dialog title={request ? `Verify ${otherParty(request)}` : "Verification"}>
      {request ? <RequestFlow request={request} /> : <NoRequest />}
    </Dialog>
  );
}

function NoRequest() {
  const [error, setError] = useState("");
  return (
    <div class="verification">
      <p>No verification in progress.</p>
      <button type="button" class="primary" onClick={() => startOwnVerification().catch((caught) => setError(errorMessage(caught)))}>
        Verify this session with another device
      </button>
      {error && <p class="error-text" role="alert">{error}</p>}
    </div>
  );
}

/** Re-renders on every change of the request (its phase, its verifier). */
function useRequestChanges(request: VerificationRequest): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const onChange = () => setTick((tick) => tick + 1);
    request.on(VerificationRequestEvent.Change, onChange);
    return () => void request.off(VerificationRequestEvent.Change, onChange);
  }, [request]);
}

/** Verifiers whose verify() has been called (once each: it runs the whole exchange). */
const running = new WeakSet<Verifier>();

function RequestFlow({ request }: { request: VerificationRequest }) {
  useRequestChanges(request);
  const [sas, setSas] = useState<ShowSasCallbacks | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const verifier = request.verifier;

  useEffect(() => {
    if (!verifier) return;
    const onSas = (callbacks: ShowSasCallbacks) => setSas(callbacks);
    verifier.on(VerifierEvent.ShowSas, onSas);
    const shown = verifier.getShowSasCallbacks();
    if (shown) setSas(shown);
    if (!running.has(verifier)) {
      running.add(verifier);
      verifier.verify().then(
        () => {
          const matrix = client.value;
          if (matrix) void refreshCryptoStatus(matrix);
        },
        (caught: unknown) => {
          if (!verifier.hasBeenCancelled) setError(errorMessage(caught));
        },
      );
    }
    return () => void verifier.off(VerifierEvent.ShowSas, onSas);
  }, [verifier]);

  const act = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError("");
    try {
      await action();
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  };

  const phase = request.phase;
  const finished = phase === VerificationPhase.Done || phase === VerificationPhase.Cancelled;
  return (
    <div class="verification">
      <p role="status">{phase === VerificationPhase.Started && sas ? "Compare these emoji with the other device" : describePhase(request)}</p>
      {phase === VerificationPhase.Requested && !request.initiatedByMe && (
        <div class="verification-buttons">
          <button type="button" class="primary" disabled={busy} onClick={() => void act(() => request.accept())}>Accept</button>
          <button type="button" disabled={busy} onClick={() => void act(() => request.cancel())}>Decline</button>
        </div>
      )}
      {phase === VerificationPhase.Ready && (
        <button type="button" class="primary" disabled={busy || !request.otherPartySupportsMethod(SAS_METHOD)} onClick={() => void act(() => request.startVerification(SAS_METHOD))}>
          Compare emoji
        </button>
      )}
      {phase === VerificationPhase.Ready && !request.otherPartySupportsMethod(SAS_METHOD) && (
        <p class="error-text">The other device cannot compare emoji.</p>
      )}
      {phase === VerificationPhase.Started && sas && <SasEmoji sas={sas} />}
      {phase === VerificationPhase.Done && <p class="ok-text">✓ {otherParty(request)} is verified.</p>}
      {phase === VerificationPhase.Cancelled && request.cancellationCode && (
        <p class="status-text">
          {request.cancellingUserId === client.value?.getUserId() && request.cancellationCode === "m.user" ? "You cancelled." : `Reason: ${request.cancellationCode}`}
        </p>
      )}
      {error && <p class="error-text" role="alert">{error}</p>}
      <div class="verification-buttons">
        {finished ? (
          <button type="button" onClick={() => (panel.value = null)}>Close</button>
        ) : (
          <button type="button" disabled={busy} onClick={() => void act(() => request.cancel())}>Cancel verification</button>
        )}
      </div>
    </div>
  );
}

function SasEmoji({ sas }: { sas: ShowSasCallbacks }) {
  const [answered, setAnswered] = useState(false);
  const emoji = sas.sas.emoji;
  return (
    <>
      {emoji ? (
        <ul class="sas-emoji" aria-label="Emoji to compare">
          {emoji.map(([symbol, name], i) => (
            <li key={i}>
              <span class="emoji" aria-hidden="true">{symbol}</span>
              <span class="emoji-name">{name}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p class="fingerprint">{sas.sas.decimal?.join(" ")}</p>
      )}
      {answered ? (
        <p role="status">Waiting for the other device to confirm…</p>
      ) : (
        <div class="verification-buttons">
          <button
            type="button"
            class="primary"
            onClick={() => {
              setAnswered(true);
              void sas.confirm();
            }}
          >
            They match
          </button>
          <button type="button" class="danger" onClick={() => sas.mismatch()}>They don't match</button>
        </div>
      )}
    </>
  );
}

/**
 * Mounted once while signed in: watches for verification requests from others and
 * prompts "Verification request from …", and keeps the encryption status fresh.
 */
export function VerificationPrompt(): JSX.Element | null {
  const matrix = client.value;
  useEffect(() => {
    if (!matrix) return;
    const stopRequests = watchVerificationRequests(matrix);
    const stopStatus = watchCryptoStatus(matrix);
    return () => {
      stopRequests();
      stopStatus();
    };
  }, [matrix]);
  const incoming = incomingRequest.value;
  if (!incoming) return null;
  return <IncomingToast request={incoming.request} />;
}

function IncomingToast({ request }: { request: VerificationRequest }) {
  useRequestChanges(request);
  // Answered elsewhere (another of our sessions), cancelled or timed out: nothing to answer here.
  const over = request.phase !== VerificationPhase.Requested && request.phase !== VerificationPhase.Unsent;
  useEffect(() => {
    if (over) incomingRequest.value = null;
  }, [over]);
  const dismiss = () => (incomingRequest.value = null);
  return (
    <div class="verification-toast" role="alert">
      <span>Verification request from {otherParty(request)}</span>
      <button
        type="button"
        class="primary"
        onClick={() => {
          dismiss();
          rememberAnswered(request);
          openVerification(request);
          if (request.phase === VerificationPhase.Requested) void request.accept().catch((e) => console.warn("verification: accept failed", e));
        }}
      >
        Accept
      </button>
      <button
        type="button"
        onClick={() => {
          dismiss();
          rememberAnswered(request);
          void request.cancel().catch(() => undefined);
        }}
      >
        Decline
      </button>
    </div>
  );
}
