/**
 * The prompts of user-interactive auth (auth/uia.ts): the account password, or a
 * button that opens the server's confirmation page in a popup (opened from the click,
 * so the browser does not block it) and waits for it to report back.
 */
import { signal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { client } from "../../state/app";
import { setUiaHandlers, waitForAuthDone } from "../../auth/uia";
import { Dialog } from "../Dialog";
import "./auth.css";

type Prompt =
  | { kind: "password"; failure?: string; answer: (password: string | null) => void }
  | { kind: "fallback"; stage: string; url: string; answer: (done: boolean) => void };

const prompt = signal<Prompt | null>(null);

const STAGE_NAMES: Record<string, string> = {
  "m.login.registration_token": "a registration token",
  "m.login.recaptcha": "a CAPTCHA",
  "m.login.terms": "the terms of service",
  "m.login.sso": "single sign-on",
};

/** Mounted once while signed in: installs the handlers and shows the current prompt. */
export function UiaPrompt() {
  useEffect(() => {
    setUiaHandlers({
      askPassword: (failure) => new Promise((resolve) => (prompt.value = { kind: "password", failure, answer: resolve })),
      completeInFallback: (stage, url) => new Promise((resolve) => (prompt.value = { kind: "fallback", stage, url, answer: resolve })),
    });
    return () => setUiaHandlers(null);
  }, []);
  const current = prompt.value;
  if (!current) return null;
  return current.kind === "password" ? <PasswordPrompt prompt={current} /> : <FallbackPrompt prompt={current} />;
}

function PasswordPrompt(props: { prompt: Extract<Prompt, { kind: "password" }> }) {
  const [password, setPassword] = useState("");
  const done = (answer: string | null) => {
    prompt.value = null;
    props.prompt.answer(answer);
  };
  return (
    <Dialog title="Confirm it's you" onClose={() => done(null)}>
      <form
        class="uia-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (password) done(password);
        }}
      >
        <label>
          <span>Your password</span>
          <input type="password" autoComplete="current-password" value={password} autoFocus onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {props.prompt.failure && (
          <p class="error-text" role="alert">
            {props.prompt.failure}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={() => done(null)}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={!password}>
            Confirm
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function FallbackPrompt(props: { prompt: Extract<Prompt, { kind: "fallback" }> }) {
  const [waiting, setWaiting] = useState(false);
  const done = (answer: boolean) => {
    prompt.value = null;
    props.prompt.answer(answer);
  };
  const open = () => {
    const homeserver = client.value?.getHomeserverUrl() ?? location.origin;
    // Not noopener: the page reports back through window.opener.postMessage.
    const popup = window.open(props.prompt.url, "uia-fallback", "width=480,height=640");
    setWaiting(true);
    void waitForAuthDone(popup, new URL(homeserver, location.href).origin).then(done);
  };
  const what = STAGE_NAMES[props.prompt.stage] ?? "an extra step";
  return (
    <Dialog title="Confirm it's you" onClose={() => done(false)}>
      <p>The server asks you to confirm with {what}, on its own page.</p>
      {waiting && <p role="status">Waiting for the confirmation page… (closing it cancels)</p>}
      <div class="dialog-actions">
        <button type="button" onClick={() => done(false)}>
          Cancel
        </button>
        <button type="button" class="primary" disabled={waiting} onClick={open}>
          Open the confirmation page
        </button>
      </div>
    </Dialog>
  );
}
