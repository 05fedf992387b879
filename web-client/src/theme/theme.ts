/**
 * The colour theme: Light, Dark or System (follow the OS's `prefers-color-scheme`).
 *
 * The choice lives in three places, each for a reason:
 * - localStorage `hs.theme`: index.html reads it before the first paint (no flash);
 * - the cookie `hs_theme`: the pages the server renders itself (fallback auth, SSO,
 *   consent, errors) read it to render in the same theme;
 * - account data `dev.homeserver.theme` = `{"theme": "light" | "dark" | "system"}`: our
 *   own namespaced global account-data type (spec: client-server-api/_index.md#client-config,
 *   "custom types should use Java package naming"), so the choice follows the user to
 *   their other devices.
 *
 * `<html data-theme>` carries the theme in effect ("light" | "dark"), which styles.css
 * keys its colours on; `<html data-theme-choice>` the choice itself.
 */
import { effect, signal } from "@preact/signals";
import { ClientEvent, SyncState, type MatrixClient, type MatrixEvent } from "matrix-js-sdk";
import { client } from "../state/app";

export type ThemeChoice = "light" | "dark" | "system";
export type Theme = "light" | "dark";

export const THEME_CHOICES: readonly ThemeChoice[] = ["light", "dark", "system"];
export const THEME_STORAGE_KEY = "hs.theme";
export const THEME_COOKIE = "hs_theme";
export const THEME_ACCOUNT_DATA_TYPE = "dev.homeserver.theme";

/** Content of the `dev.homeserver.theme` account data event. */
export interface ThemeAccountData {
  theme: ThemeChoice;
}

declare module "matrix-js-sdk/lib/types" {
  interface AccountDataEvents {
    [THEME_ACCOUNT_DATA_TYPE]: ThemeAccountData;
  }
}

const ONE_YEAR_SECONDS = 31536000;
const DARK_QUERY = "(prefers-color-scheme: dark)";

/** The current choice (the settings panel shows it). */
export const themeChoice = signal<ThemeChoice>("system");

export function parseThemeChoice(value: unknown): ThemeChoice | null {
  return typeof value === "string" && (THEME_CHOICES as readonly string[]).includes(value) ? (value as ThemeChoice) : null;
}

export function resolveTheme(choice: ThemeChoice, prefersDark: boolean): Theme {
  if (choice === "system") return prefersDark ? "dark" : "light";
  return choice;
}

export function themeCookie(choice: ThemeChoice): string {
  return `${THEME_COOKIE}=${choice}; Path=/; Max-Age=${ONE_YEAR_SECONDS}; SameSite=Lax`;
}

/** The choice kept in localStorage, or null when none was ever made (or storage is blocked). */
export function readStoredChoice(): ThemeChoice | null {
  try {
    return parseThemeChoice(localStorage.getItem(THEME_STORAGE_KEY));
  } catch {
    return null;
  }
}

function prefersDark(): boolean {
  return typeof matchMedia === "function" && matchMedia(DARK_QUERY).matches;
}

/** Puts the choice on <html> (what the CSS reads). */
export function applyTheme(choice: ThemeChoice, dark: boolean = prefersDark()): void {
  const root = document.documentElement;
  root.dataset.theme = resolveTheme(choice, dark);
  root.dataset.themeChoice = choice;
}

/** Makes `choice` the theme of this browser: <html>, localStorage and the cookie. */
export function applyLocalChoice(choice: ThemeChoice): void {
  themeChoice.value = choice;
  applyTheme(choice);
  try {
    localStorage.setItem(THEME_STORAGE_KEY, choice);
  } catch {
    // Private mode with storage blocked: the theme still applies to this page.
  }
  document.cookie = themeCookie(choice);
}

/**
 * Account-data values this device sent whose echo has not come back yet.  A quick
 * Dark → Light would otherwise see Dark's echo arrive after Light and switch back.
 */
const unechoed: ThemeChoice[] = [];

/** What the user picked in the settings: applied here and sent to their other devices. */
export async function setThemeChoice(choice: ThemeChoice, matrix: MatrixClient | null = client.value): Promise<void> {
  applyLocalChoice(choice);
  if (!matrix) return;
  unechoed.push(choice);
  try {
    await matrix.setAccountData(THEME_ACCOUNT_DATA_TYPE, { theme: choice });
  } catch (error) {
    // Offline or refused: this device keeps the choice; the next change syncs it.
    unechoed.splice(unechoed.indexOf(choice), 1);
    console.warn("theme: could not save the theme to account data", error);
  }
}

/** Adopts a theme that arrived in account data (set on another device). */
export function adoptAccountTheme(content: unknown): void {
  const choice = parseThemeChoice((content as Partial<ThemeAccountData> | undefined)?.theme);
  if (!choice) return;
  const sent = unechoed.indexOf(choice);
  if (sent >= 0) {
    const latest = sent === unechoed.length - 1;
    unechoed.splice(0, sent + 1);
    if (!latest) return; // an older echo of ours: a newer choice is on its way
  }
  if (choice !== themeChoice.value || readStoredChoice() !== choice) applyLocalChoice(choice);
}

/**
 * Keeps the theme in step with the account: after the first sync, the account's value
 * wins (it was chosen on some device since); if the account has none yet, this
 * device's explicit choice is uploaded so the others can follow.
 */
export function syncThemeWithAccount(matrix: MatrixClient): () => void {
  const reconcile = () => {
    const content = matrix.getAccountData(THEME_ACCOUNT_DATA_TYPE)?.getContent();
    if (parseThemeChoice(content?.theme)) adoptAccountTheme(content);
    else {
      const local = readStoredChoice();
      if (local) void setThemeChoice(local, matrix);
    }
  };
  const onSync = (state: SyncState) => {
    if (state !== SyncState.Prepared && state !== SyncState.Syncing) return;
    matrix.off(ClientEvent.Sync, onSync);
    reconcile();
  };
  const onAccountData = (event: MatrixEvent) => {
    if (event.getType() === THEME_ACCOUNT_DATA_TYPE) adoptAccountTheme(event.getContent());
  };
  matrix.on(ClientEvent.AccountData, onAccountData);
  if (matrix.isInitialSyncComplete()) reconcile();
  else matrix.on(ClientEvent.Sync, onSync);
  return () => {
    matrix.off(ClientEvent.AccountData, onAccountData);
    matrix.off(ClientEvent.Sync, onSync);
  };
}

/** Called once by main.tsx: applies the stored choice, follows the OS, and the account. */
export function startTheme(): void {
  const stored = readStoredChoice();
  themeChoice.value = stored ?? "system";
  applyTheme(themeChoice.value);
  // The server's own pages read the cookie; renew it so it outlives a year of use.
  document.cookie = themeCookie(themeChoice.value);
  if (typeof matchMedia === "function") {
    matchMedia(DARK_QUERY).addEventListener("change", (event) => {
      if (themeChoice.value === "system") applyTheme("system", event.matches);
    });
  }
  effect(() => {
    const signedIn = client.value;
    if (signedIn) return syncThemeWithAccount(signedIn);
  });
}
