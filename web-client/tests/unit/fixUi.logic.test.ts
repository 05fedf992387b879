// Small decisions of the UI: the verification prompt, the sign-out warning, per-room drafts.
import { describe, expect, it } from "vitest";
import { VerificationPhase } from "matrix-js-sdk/lib/crypto-api/index";
import { shouldPrompt } from "../../src/crypto/verification";
import { losesEncryptedHistory } from "../../src/crypto/signOutRisk";
import { draftFor, keepDraft } from "../../src/ui/timeline/composerState";

const request = (over: Partial<Parameters<typeof shouldPrompt>[0]> = {}) => ({
  phase: VerificationPhase.Requested,
  initiatedByMe: false,
  timeout: 500_000,
  transactionId: "$req",
  ...over,
});

describe("shouldPrompt", () => {
  it("prompts for a fresh request from someone else", () => {
    expect(shouldPrompt(request(), new Set())).toBe(true);
    expect(shouldPrompt(request({ timeout: null }), new Set())).toBe(true);
  });
  it("ignores requests past the requested phase, timed out, our own, or answered before", () => {
    expect(shouldPrompt(request({ phase: VerificationPhase.Ready }), new Set())).toBe(false);
    expect(shouldPrompt(request({ phase: VerificationPhase.Done }), new Set())).toBe(false);
    expect(shouldPrompt(request({ phase: VerificationPhase.Cancelled }), new Set())).toBe(false);
    expect(shouldPrompt(request({ timeout: 0 }), new Set())).toBe(false);
    expect(shouldPrompt(request({ initiatedByMe: true }), new Set())).toBe(false);
    expect(shouldPrompt(request(), new Set(["$req"]))).toBe(false);
  });
});

describe("losesEncryptedHistory", () => {
  it("warns only when crypto runs, encrypted rooms exist and no backup is active", () => {
    expect(losesEncryptedHistory({ cryptoRunning: true, hasEncryptedRooms: true, activeBackup: null })).toBe(true);
    expect(losesEncryptedHistory({ cryptoRunning: true, hasEncryptedRooms: true, activeBackup: "3" })).toBe(false);
    expect(losesEncryptedHistory({ cryptoRunning: true, hasEncryptedRooms: false, activeBackup: null })).toBe(false);
    expect(losesEncryptedHistory({ cryptoRunning: false, hasEncryptedRooms: true, activeBackup: null })).toBe(false);
  });
});

describe("drafts", () => {
  it("keeps a draft per account and room, and forgets an empty one", () => {
    keepDraft("@a:hs", "!r:hs", "hello");
    expect(draftFor("@a:hs", "!r:hs")).toBe("hello");
    expect(draftFor("@b:hs", "!r:hs")).toBe("");
    expect(draftFor("@a:hs", "!other:hs")).toBe("");
    keepDraft("@a:hs", "!r:hs", "  ");
    expect(draftFor("@a:hs", "!r:hs")).toBe("");
  });
});
