import { describe, expect, it } from "vitest";
import { DecryptionFailureCode } from "matrix-js-sdk/lib/crypto-api/index";
import { explainDecryptionFailure } from "../../src/crypto/decryptionFailure";

const unverified = { deviceVerified: false, backupExists: false };

describe("explainDecryptionFailure", () => {
  it("says a message from before one joined cannot be helped", () => {
    expect(explainDecryptionFailure(DecryptionFailureCode.HISTORICAL_MESSAGE_USER_NOT_JOINED, unverified)).toEqual({
      reason: "It was sent before you joined the room.",
      remedy: null,
    });
  });

  it("says keys are on their way, and offers verification or the backup", () => {
    const waiting = explainDecryptionFailure(DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID, unverified);
    expect(waiting.reason).toContain("waiting for the sender's device — this may take a moment");
    expect(waiting.remedy).toBe("verify");
    expect(explainDecryptionFailure(DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID, { deviceVerified: true, backupExists: true }).remedy).toBe("restore");
    expect(explainDecryptionFailure(DecryptionFailureCode.MEGOLM_UNKNOWN_INBOUND_SESSION_ID, { deviceVerified: true, backupExists: false }).remedy).toBeNull();
  });

  it("asks to verify when keys are withheld from unverified sessions", () => {
    const withheld = explainDecryptionFailure(DecryptionFailureCode.MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE, { deviceVerified: false, backupExists: true });
    expect(withheld).toEqual({ reason: expect.stringContaining("not verified"), remedy: "verify" });
    expect(explainDecryptionFailure(DecryptionFailureCode.MEGOLM_KEY_WITHHELD, unverified).reason).toContain("withheld");
  });

  it("offers the key backup for history from before this session", () => {
    expect(explainDecryptionFailure(DecryptionFailureCode.HISTORICAL_MESSAGE_BACKUP_UNCONFIGURED, unverified).remedy).toBe("restore");
    expect(explainDecryptionFailure(DecryptionFailureCode.HISTORICAL_MESSAGE_NO_KEY_BACKUP, unverified).remedy).toBeNull();
  });

  it("explains every code the SDK can report, and an unknown one", () => {
    for (const code of Object.values(DecryptionFailureCode)) {
      expect(explainDecryptionFailure(code, unverified).reason.length).toBeGreaterThan(10);
    }
    expect(explainDecryptionFailure(null, unverified).reason).toContain("unexpected");
  });
});
