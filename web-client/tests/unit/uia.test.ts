// User-interactive auth on the SDK's InteractiveAuth: password (known or asked), the
// fallback page for other stages, cancelling, and the authDone origin check.
import { describe, expect, it, vi } from "vitest";
import { createClient, MatrixError, type AuthDict } from "matrix-js-sdk";
import { UiaCancelled, waitForAuthDone, withUia, type UiaHandlers } from "../../src/auth/uia";

// The SDK's InteractiveAuth uses Promise.withResolvers (browsers have it; Node 20 does not).
if (!("withResolvers" in Promise)) {
  Object.assign(Promise, {
    withResolvers<T>() {
      let resolve!: (value: T) => void;
      let reject!: (reason: unknown) => void;
      const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    },
  });
}

const matrix = createClient({ baseUrl: "https://hs.test", userId: "@alice:hs.test", accessToken: "t" });

function challenge(stages: string[], extra: Record<string, unknown> = {}) {
  return new MatrixError({ flows: [{ stages }], session: "s1", params: {}, ...extra }, 401);
}

/** A UIA endpoint: wants `stages` answered in one flow, remembers every auth it got. */
function endpoint(stages: string[], accept: (auth: AuthDict) => boolean) {
  const seen: (AuthDict | null)[] = [];
  const request = vi.fn(async (auth: AuthDict | null) => {
    seen.push(auth);
    if (auth && accept(auth)) return "ok";
    throw challenge(stages, auth ? { errcode: "M_FORBIDDEN", error: "Invalid password" } : {});
  });
  return { request, seen };
}

const handlers = (over: Partial<UiaHandlers> = {}): UiaHandlers => ({
  askPassword: vi.fn(async () => null),
  completeInFallback: vi.fn(async () => false),
  ...over,
});

describe("withUia", () => {
  it("answers m.login.password with a known password without asking", async () => {
    const { request, seen } = endpoint(["m.login.password"], (auth) => (auth as { password?: string }).password === "right");
    const ask = handlers();
    await expect(withUia(matrix, request, { password: "right", handlers: ask })).resolves.toBe("ok");
    expect(seen[1]).toMatchObject({ type: "m.login.password", password: "right", session: "s1", identifier: { type: "m.id.user", user: "@alice:hs.test" } });
    expect(ask.askPassword).not.toHaveBeenCalled();
  });

  it("asks, saying why, when the known password is refused", async () => {
    const { request } = endpoint(["m.login.password"], (auth) => (auth as { password?: string }).password === "right");
    const ask = handlers({ askPassword: vi.fn(async () => "right") });
    await expect(withUia(matrix, request, { password: "wrong", handlers: ask })).resolves.toBe("ok");
    expect(ask.askPassword).toHaveBeenCalledWith("Invalid password");
  });

  it("rejects with UiaCancelled when the user cancels", async () => {
    const { request } = endpoint(["m.login.password"], () => false);
    await expect(withUia(matrix, request, { handlers: handlers() })).rejects.toBeInstanceOf(UiaCancelled);
  });

  it("completes other stages on the server's fallback page, then retries with the session only", async () => {
    const { request, seen } = endpoint(["m.login.registration_token"], (auth) => (auth as { session?: string }).session === "s1" && !(auth as { type?: string }).type);
    const ask = handlers({ completeInFallback: vi.fn(async () => true) });
    await expect(withUia(matrix, request, { handlers: ask })).resolves.toBe("ok");
    const [stage, url] = vi.mocked(ask.completeInFallback).mock.calls[0]!;
    expect(stage).toBe("m.login.registration_token");
    expect(url).toBe("https://hs.test/_matrix/client/v3/auth/m.login.registration_token/fallback/web?session=s1");
    expect(seen[seen.length - 1]).toEqual({ session: "s1" });
  });
});

describe("waitForAuthDone", () => {
  it("accepts authDone only from the homeserver's origin, and gives up when the popup closes", async () => {
    const popup = { closed: false } as Window;
    const waiting = waitForAuthDone(popup, "https://hs.test");
    window.dispatchEvent(new MessageEvent("message", { data: "authDone", origin: "https://evil.test" }));
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(false);
    window.dispatchEvent(new MessageEvent("message", { data: "authDone", origin: "https://hs.test" }));
    await expect(waiting).resolves.toBe(true);

    const closing = { closed: false } as { closed: boolean };
    const abandoned = waitForAuthDone(closing as Window, "https://hs.test");
    closing.closed = true;
    await expect(abandoned).resolves.toBe(false);
  });
});

describe("bootstrapCrossSigningIfMissing", async () => {
  const { bootstrapCrossSigningIfMissing } = await import("../../src/crypto/crossSigningAtLogin");
  const fakeClient = (hasKeys: boolean) => {
    const crypto = { userHasCrossSigningKeys: vi.fn(async () => hasKeys), bootstrapCrossSigning: vi.fn(async () => undefined) };
    return { crypto, client: { getUserId: () => "@alice:hs.test", getCrypto: () => crypto } as never };
  };
  it("creates the identity, with the sign-in password for UIA, only when the account has none", async () => {
    const uia = vi.fn();
    const without = fakeClient(false);
    expect(await bootstrapCrossSigningIfMissing(without.client, "pw", uia)).toBe(true);
    expect(without.crypto.userHasCrossSigningKeys).toHaveBeenCalledWith("@alice:hs.test", true);
    expect(without.crypto.bootstrapCrossSigning).toHaveBeenCalledWith({ authUploadDeviceSigningKeys: uia });
    const withKeys = fakeClient(true);
    expect(await bootstrapCrossSigningIfMissing(withKeys.client, "pw", uia)).toBe(false);
    expect(withKeys.crypto.bootstrapCrossSigning).not.toHaveBeenCalled();
  });
});
