/**
 * Signing in: password login (spec: client-server-api/_index.md#password-based),
 * SSO redirects and their m.login.token return (#client-login-via-sso), and the
 * messages a person reads when it fails.
 */
import { AutoDiscovery, AutoDiscoveryAction, createClient, type LoginResponse, type MatrixClient } from "matrix-js-sdk";
import type { StoredSession } from "../matrix/client";
import { ssoProvidersFrom } from "../matrix/client";
import type { SsoProvider } from "../state/features";
import { deviceDisplayName } from "./deviceName";

const SSO_BASE_URL_KEY = "hs.sso.baseUrl";

/** "https://example.org/" or "example.org" → "https://example.org". */
export function normaliseBaseUrl(input: string): string {
  let url = input.trim();
  if (!/^https?:\/\//i.test(url)) url = `https://${url}`;
  return url.replace(/\/+$/, "");
}

/** "@alice:example.org" → "example.org"; a plain localpart → null. */
export function serverNameOf(username: string): string | null {
  const match = /^@[^:]+:(.+)$/.exec(username.trim());
  return match ? match[1] : null;
}

/**
 * The homeserver of a full user ID, through its .well-known (spec:
 * client-server-api/_index.md#well-known-uris), or null when it has none.
 */
export async function discoverHomeserver(serverName: string): Promise<string | null> {
  try {
    const config = await AutoDiscovery.findClientConfig(serverName);
    const homeserver = config["m.homeserver"];
    if (homeserver.state === AutoDiscoveryAction.SUCCESS && homeserver.base_url) return normaliseBaseUrl(homeserver.base_url);
  } catch {
    // no discovery: the caller uses the URL it has
  }
  return null;
}

function tempClient(baseUrl: string): MatrixClient {
  return createClient({ baseUrl });
}

export async function passwordLogin(baseUrl: string, username: string, password: string): Promise<StoredSession> {
  const response = await tempClient(baseUrl).loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: username.trim() },
    password,
    initial_device_display_name: deviceDisplayName(),
  });
  return sessionFrom(baseUrl, response);
}

/** The identity providers the server lists in GET /login (none before SSO exists). */
export async function fetchSsoProviders(baseUrl: string): Promise<SsoProvider[]> {
  const { flows } = await tempClient(baseUrl).loginFlows();
  return ssoProvidersFrom(flows as unknown[]);
}

/** Where the browser goes to sign in with an identity provider; it comes back here with ?loginToken=. */
export function ssoRedirectUrl(baseUrl: string, idpId: string): string {
  sessionStorage.setItem(SSO_BASE_URL_KEY, baseUrl);
  const returnTo = new URL(location.href);
  returnTo.search = "";
  returnTo.hash = "";
  return tempClient(baseUrl).getSsoLoginUrl(returnTo.toString(), "sso", idpId || undefined);
}

/** The loginToken of an SSO return, if this page load is one. */
export function pendingSsoLoginToken(): string | null {
  return new URLSearchParams(location.search).get("loginToken");
}

/**
 * Whether this tab started the SSO login the loginToken returns from (ssoRedirectUrl
 * left its mark in sessionStorage).  A loginToken nobody here asked for may be an
 * attacker's, signing this browser into the attacker's account (login CSRF).
 */
export function ssoStartedHere(): boolean {
  return sessionStorage.getItem(SSO_BASE_URL_KEY) !== null;
}

/** Takes the loginToken out of the address bar (it is single-use, and not to be bookmarked). */
export function dropSsoLoginToken(): void {
  const cleaned = new URL(location.href);
  cleaned.searchParams.delete("loginToken");
  history.replaceState(history.state, "", cleaned.toString());
}

/** Exchanges the SSO return's loginToken for a session, and takes it out of the address bar. */
export async function completeSsoLogin(loginToken: string): Promise<StoredSession> {
  dropSsoLoginToken();
  const baseUrl = sessionStorage.getItem(SSO_BASE_URL_KEY);
  if (baseUrl === null) throw new Error("Single sign-on did not complete: this browser did not start it.");
  try {
    const response = await tempClient(baseUrl).loginRequest({
      type: "m.login.token",
      token: loginToken,
      initial_device_display_name: deviceDisplayName(),
    });
    sessionStorage.removeItem(SSO_BASE_URL_KEY);
    return sessionFrom(baseUrl, response);
  } catch (error) {
    throw new Error(`Single sign-on did not complete: ${loginErrorMessage(error, baseUrl)}`);
  }
}

function sessionFrom(baseUrl: string, response: LoginResponse): StoredSession {
  // spec: a well_known in the login response overrides the URL we used.
  const advertised = response.well_known?.["m.homeserver"]?.base_url;
  return {
    baseUrl: advertised ? normaliseBaseUrl(advertised) : baseUrl,
    userId: response.user_id,
    deviceId: response.device_id,
    accessToken: response.access_token,
  };
}

/** What to tell the person when a login fails. */
export function loginErrorMessage(error: unknown, baseUrl: string): string {
  const e = error as { httpStatus?: number; errcode?: string; data?: { error?: string; retry_after_ms?: number }; getRetryAfterMs?: () => number | null; name?: string };
  if (e?.httpStatus === 429) {
    let ms: number | null = null;
    try {
      ms = e.getRetryAfterMs?.() ?? e.data?.retry_after_ms ?? null;
    } catch {
      ms = e.data?.retry_after_ms ?? null;
    }
    return ms !== null ? `Too many attempts: try again in ${Math.max(1, Math.ceil(ms / 1000))} s.` : "Too many attempts: try again in a moment.";
  }
  if (e?.httpStatus !== undefined && e.data?.error) return e.data.error;
  if (e?.errcode === "M_FORBIDDEN") return "Wrong username or password.";
  if (e?.httpStatus === undefined) return `Cannot reach the server at ${baseUrl}.`;
  return `The server refused the login (${e.errcode ?? e.httpStatus}).`;
}
