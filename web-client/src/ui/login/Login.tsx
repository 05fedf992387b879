/**
 * The login screen: username (or a full @user:server ID) and password, the
 * homeserver under "Other server" (this page's origin by default), and a button per
 * SSO identity provider the server lists.
 */
import { useEffect, useState } from "preact/hooks";
import type { SsoProvider } from "../../state/features";
import { beginSession, signedOutMessage } from "../../session/session";
import { setUpCrossSigningAfterLogin } from "../../crypto/crossSigningAtLogin";
import {
  discoverHomeserver,
  fetchSsoProviders,
  loginErrorMessage,
  normaliseBaseUrl,
  passwordLogin,
  serverNameOf,
  ssoRedirectUrl,
} from "../../session/login";
import "./login.css";

export function Login() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [homeserver, setHomeserver] = useState(location.origin);
  const [homeserverEdited, setHomeserverEdited] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [providers, setProviders] = useState<SsoProvider[]>([]);
  const baseUrl = safeBaseUrl(homeserver);

  useEffect(() => {
    if (!baseUrl) return;
    let cancelled = false;
    const timer = setTimeout(() => {
      fetchSsoProviders(baseUrl).then(
        (found) => !cancelled && setProviders(found),
        () => !cancelled && setProviders([]),
      );
    }, 300);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [baseUrl]);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    let server = baseUrl ?? location.origin;
    try {
      // A full user ID names its server: find that server's client API unless
      // the person chose one by hand.
      const serverName = serverNameOf(username);
      if (serverName && !homeserverEdited && serverName !== location.host) {
        server = (await discoverHomeserver(serverName)) ?? server;
      }
      await beginSession(await passwordLogin(server, username, password));
      void setUpCrossSigningAfterLogin(password);
    } catch (failure) {
      setError(loginErrorMessage(failure, server));
      setBusy(false);
    }
  };

  const message = signedOutMessage.value;
  return (
    <main class="login">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in</h1>
        {message && (
          <p class="login-notice" role="status">
            {message}
          </p>
        )}
        <label class="field">
          <span>Username</span>
          <input
            id="login-username"
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellcheck={false}
            required
            placeholder="alice or @alice:example.org"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            id="login-password"
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <details class="login-server">
          <summary>Other server</summary>
          <label class="field">
            <span>Homeserver</span>
            <input
            id="login-homeserver"
              type="url"
              name="homeserver"
              inputMode="url"
              value={homeserver}
              onInput={(e) => {
                setHomeserver(e.currentTarget.value);
                setHomeserverEdited(true);
              }}
            />
          </label>
        </details>
        {error && (
          <p class="error-text" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {providers.length > 0 && baseUrl && (
          <div class="login-sso" role="group" aria-label="Single sign-on">
            <p>or continue with</p>
            {providers.map((idp) => (
              <button type="button" key={idp.id} onClick={() => location.assign(ssoRedirectUrl(baseUrl, idp.id))}>
                {idp.name}
              </button>
            ))}
          </div>
        )}
      </form>
    </main>
  );
}

function safeBaseUrl(input: string): string | null {
  try {
    const url = normaliseBaseUrl(input);
    new URL(url);
    return url;
  } catch {
    return null;
  }
}
