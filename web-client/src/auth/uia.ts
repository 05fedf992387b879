/**
 * User-interactive auth (spec: client-server-api/_index.md#user-interactive-authentication-api)
 * on matrix-js-sdk's InteractiveAuth, for every request that needs it (deleting
 * sessions, uploading cross-signing keys): m.login.password is answered with a password
 * (one already known, e.g. just typed at sign-in, else asked for), m.login.dummy by the
 * SDK itself, and any other stage through the server's fallback page in a popup
 * (spec: #fallback), which posts "authDone" when finished; the request is then retried
 * with only the session.
 */
import { AuthType, InteractiveAuth, type AuthDict, type IStageStatus, type MatrixClient, type UIAuthCallback } from "matrix-js-sdk";

/** How the user is asked; the app's are in ui/auth/UiaPrompt.tsx, tests pass their own. */
export interface UiaHandlers {
  /** The account password, or null when the user cancels.  `failure` says why the last one was refused. */
  askPassword(failure?: string): Promise<string | null>;
  /** Completes `stage` on the server's page at `url`; true once it reported "authDone", false when abandoned. */
  completeInFallback(stage: string, url: string): Promise<boolean>;
}

export class UiaCancelled extends Error {
  constructor() {
    super("Cancelled");
    this.name = "UiaCancelled";
  }
}

let defaultHandlers: UiaHandlers | null = null;

/** Installed once by the UI that shows the prompts. */
export function setUiaHandlers(handlers: UiaHandlers | null): void {
  defaultHandlers = handlers;
}

/**
 * The SDK's UIA callback shape (as bootstrapCrossSigning's authUploadDeviceSigningKeys
 * takes): `uiaAuth(matrix, { password })(auth => request(auth))`.  A known password is
 * tried once; if it is refused the user is asked.
 */
export function uiaAuth<T = unknown>(matrix: MatrixClient, options: { password?: string; handlers?: UiaHandlers } = {}): UIAuthCallback<T> {
  return (makeRequest) => runUia(matrix, makeRequest, options);
}

/** Runs `makeRequest` through UIA. */
export function withUia<T>(matrix: MatrixClient, makeRequest: (auth: AuthDict | null) => Promise<T>, options: { password?: string; handlers?: UiaHandlers } = {}): Promise<T> {
  return runUia(matrix, makeRequest, options);
}

function runUia<T>(matrix: MatrixClient, makeRequest: (auth: AuthDict | null) => Promise<T>, options: { password?: string; handlers?: UiaHandlers }): Promise<T> {
  const handlers = options.handlers ?? defaultHandlers;
  let known = options.password;
  let passwordSent = false;
  let abandon: (reason: unknown) => void = () => undefined;
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));

  const answer = async (stage: string, status: IStageStatus) => {
    const session = auth.getSessionId();
    if (stage === AuthType.Password) {
      // The server's error only means "wrong password" once one was sent in this run.
      const failure = passwordSent && (status.errcode || status.error) ? status.error || "Wrong password" : undefined;
      const password = known && !failure ? known : await ask(() => handlers!.askPassword(failure));
      known = undefined;
      if (password === null) throw new UiaCancelled();
      passwordSent = true;
      await auth.submitAuthDict({ type: AuthType.Password, identifier: { type: "m.id.user", user: matrix.getUserId()! }, password, session });
      return;
    }
    if (!session) throw new Error(`The server asked for "${stage}" without a session to complete it in.`);
    const done = await ask(() => handlers!.completeInFallback(stage, matrix.getFallbackAuthUrl(stage, session)));
    if (!done) throw new UiaCancelled();
    await auth.submitAuthDict({ session });
  };
  const ask = <A>(prompt: () => Promise<A>): Promise<A> => {
    if (!handlers) throw new Error("This needs a confirmation that cannot be asked for here.");
    return prompt();
  };

  const auth: InteractiveAuth<T> = new InteractiveAuth<T>({
    matrixClient: matrix,
    doRequest: (authDict) => makeRequest(authDict),
    stateUpdated: (stage, status) => void answer(stage, status).catch(abandon),
    requestEmailToken: () => Promise.reject(new Error("Confirming by email is not supported by this app.")),
  });
  return Promise.race([auth.attemptAuth(), abandoned]);
}

/**
 * Waits for the fallback page in `popup` to post "authDone" (spec: #fallback), only
 * from the homeserver's origin.  Resolves false if the popup is closed first.
 */
export function waitForAuthDone(popup: Window | null, homeserverOrigin: string, target: Window = window): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (done: boolean) => {
      target.removeEventListener("message", onMessage);
      clearInterval(closedPoll);
      resolve(done);
    };
    const onMessage = (event: MessageEvent) => {
      if (event.origin === homeserverOrigin && event.data === "authDone") finish(true);
    };
    target.addEventListener("message", onMessage);
    const closedPoll = setInterval(() => {
      if (!popup || popup.closed) finish(false);
    }, 500);
  });
}
