/**
 * Interactive verification (spec: client-server-api/modules/end_to_end_encryption.md#device-verification):
 * the requests this session knows, the incoming one waiting for an answer, and how to
 * start one — of this user's other sessions, or of another user in a DM.
 */
import { signal } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { CryptoEvent, VerificationPhase, type VerificationRequest } from "matrix-js-sdk/lib/crypto-api/index";
import { client, panel } from "../state/app";

/** Requests by the ID the verification panel is opened with. */
const requests = new Map<string, VerificationRequest>();
let nextId = 1;

/** An incoming request not yet accepted or dismissed (shown as a prompt). */
export const incomingRequest = signal<{ id: string; request: VerificationRequest } | null>(null);

export function verificationRequest(id: string | undefined): VerificationRequest | undefined {
  return id ? requests.get(id) : undefined;
}

/** Registers a request and returns the ID the panel is opened with. */
export function trackRequest(request: VerificationRequest): string {
  for (const [id, known] of requests) if (known === request) return id;
  const id = `verification-${nextId++}`;
  requests.set(id, request);
  return id;
}

export function openVerification(request: VerificationRequest): void {
  panel.value = { kind: "verification", requestId: trackRequest(request) };
}

function requireCrypto(matrix: MatrixClient | null = client.value) {
  const crypto = matrix?.getCrypto();
  if (!crypto) throw new Error("Encryption is starting… try again in a moment.");
  return crypto;
}

/** Asks this user's other sessions to verify this one ("Verify this session"). */
export async function startOwnVerification(): Promise<void> {
  openVerification(await requireCrypto().requestOwnUserVerification());
}

/** Verifies another user, in the DM with them (used by the rooms and timeline screens). */
export async function startUserVerification(userId: string, roomId: string): Promise<void> {
  const crypto = requireCrypto();
  const existing = crypto.findVerificationRequestDMInProgress(roomId, userId);
  openVerification(existing ?? (await crypto.requestVerificationDM(userId, roomId)));
}

/** What the prompt decision reads of a request (a VerificationRequest, or a plain object in tests). */
export type PromptCandidate = Pick<VerificationRequest, "phase" | "initiatedByMe" | "timeout" | "transactionId">;

/**
 * Whether an incoming request deserves the "Verification request from …" prompt: only
 * while it waits for an answer ("requested", not timed out; spec: the request expires
 * after 10 minutes) and this device has not answered it before — after a reload the
 * SDK hands over requests again from the room's history.
 */
export function shouldPrompt(request: PromptCandidate, answered: ReadonlySet<string>): boolean {
  if (request.initiatedByMe || request.phase !== VerificationPhase.Requested) return false;
  if (request.timeout !== null && request.timeout <= 0) return false;
  return !(request.transactionId && answered.has(request.transactionId));
}

const ANSWERED_KEEP = 50;
const answeredKey = (matrix: MatrixClient) => `verification-answered:${matrix.getUserId()}:${matrix.getDeviceId()}`;

function readAnswered(matrix: MatrixClient): string[] {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(answeredKey(matrix)) ?? "[]");
    return Array.isArray(stored) ? stored.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}

/** Remembers that this device accepted or declined the request, so it is not asked again. */
export function rememberAnswered(request: VerificationRequest, matrix: MatrixClient | null = client.value): void {
  if (!matrix || !request.transactionId) return;
  const ids = readAnswered(matrix).filter((id) => id !== request.transactionId);
  ids.push(request.transactionId);
  try {
    localStorage.setItem(answeredKey(matrix), JSON.stringify(ids.slice(-ANSWERED_KEEP)));
  } catch {
    // Storage full or unavailable: the phase check still hides most answered requests.
  }
}

/** Listens for requests from others; returns the function that stops listening. */
export function watchVerificationRequests(matrix: MatrixClient): () => void {
  const onRequest = (request: VerificationRequest) => {
    if (!shouldPrompt(request, new Set(readAnswered(matrix)))) return;
    incomingRequest.value = { id: trackRequest(request), request };
  };
  matrix.on(CryptoEvent.VerificationRequestReceived, onRequest);
  return () => matrix.off(CryptoEvent.VerificationRequestReceived, onRequest);
}

/** The words for a request's state. */
export function describePhase(request: VerificationRequest): string {
  switch (request.phase) {
    case VerificationPhase.Unsent:
    case VerificationPhase.Requested:
      return request.initiatedByMe ? "Waiting for the other side to accept…" : "Verification requested";
    case VerificationPhase.Ready:
      return "Ready: compare emoji to verify";
    case VerificationPhase.Started:
      return "Comparing emoji…";
    case VerificationPhase.Cancelled:
      return "Verification cancelled";
    case VerificationPhase.Done:
      return "Verified";
  }
}

/** The person or session being verified, for titles. */
export function otherParty(request: VerificationRequest): string {
  if (request.isSelfVerification) return request.otherDeviceId ? `your session ${request.otherDeviceId}` : "your other session";
  return request.otherUserId;
}
