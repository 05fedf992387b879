/**
 * What the server offers beyond the stable API, discovered at sign-in from
 * /versions, /capabilities and /login (written by matrix/client.ts only).  Each
 * feature of the app that depends on one lights up when it is true and degrades
 * to the stable API otherwise, so the app also works against other servers.
 */
import { signal } from "@preact/signals";

export interface SsoProvider {
  id: string;
  name: string;
  icon?: string;
  brand?: string;
}

export interface ServerFeatures {
  /** `dev.homeserver.stream` in /versions: the WebSocket sync stream (docs/websocket-stream.md). */
  websocketStream: boolean;
  /** `dev.homeserver.delivered_receipts`: `dev.homeserver.delivered` receipts (docs/live-status.md). */
  deliveredReceipts: boolean;
  /** `dev.homeserver.search_filters`: the `dev.homeserver.*` filters of POST /search (docs/search.md). */
  searchFilters: boolean;
  /** The VAPID public key from `m.webpush` in /capabilities (MSC4174), or null. */
  webPushVapidKey: string | null;
  /** /versions lists v1.11+: media under /_matrix/client/v1/media with the access token. */
  authenticatedMedia: boolean;
  /** `m.login.sso` identity providers from GET /login (empty before SSO exists). */
  ssoProviders: SsoProvider[];
}

export const NO_FEATURES: ServerFeatures = {
  websocketStream: false,
  deliveredReceipts: false,
  searchFilters: false,
  webPushVapidKey: null,
  authenticatedMedia: false,
  ssoProviders: [],
};

export const features = signal<ServerFeatures>(NO_FEATURES);
