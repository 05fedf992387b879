// Driving the app only through the accessibility contract (issue 15): roles and
// accessible names, never CSS classes or DOM structure of the components.

import { expect } from "./expect.mjs";

export const TICKS = ["Sending", "Sent", "Delivered", "Seen"];
const TICK_NAME = /^(Sending|Sent|Delivered|Seen)$/;

export function roomsNav(page) {
    return page.getByRole("navigation", { name: "Rooms" });
}

export function messagesLog(page) {
    return page.getByRole("log", { name: "Messages" });
}

export function composer(page) {
    return page.getByRole("textbox", { name: "Message" });
}

/** Sign in through the login form; the homeserver field keeps its default (the page's origin). */
export async function signIn(page, user) {
    await page.goto("/");
    await page.getByLabel("Username", { exact: true }).fill(user.localpart);
    await page.getByLabel("Password", { exact: true }).fill(user.password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(roomsNav(page), "the room list after signing in").toBeVisible({ timeout: 30_000 });
}

/** The room's entry in the "Rooms" navigation: a link or button whose name contains the room name. */
export function roomEntry(page, roomName) {
    const nav = roomsNav(page);
    return nav.getByRole("link", { name: roomName }).or(nav.getByRole("button", { name: roomName })).first();
}

/** Open a joined room from the room list and wait for its timeline. */
export async function openRoom(page, roomName) {
    await roomEntry(page, roomName).click({ timeout: 30_000 });
    await expect(messagesLog(page), `the timeline of ${roomName}`).toBeVisible({ timeout: 15_000 });
}

/**
 * Accept an invite from the room list: the "Join" button that belongs to the room's
 * invite (the nearest element holding both the room name and a "Join" button).
 */
export async function acceptInvite(page, roomName) {
    // Inner locators of `has` are relative to the element filtered, hence `page.`.
    const join = page.getByRole("button", { name: "Join" });
    const invite = roomsNav(page).locator("*").filter({ hasText: roomName }).filter({ has: join }).last();
    await invite.getByRole("button", { name: "Join" }).first().click({ timeout: 30_000 });
}

export async function sendMessage(page, text) {
    const box = composer(page);
    await box.click();
    await box.fill(text);
    await box.press("Enter");
    await expect(box, "the composer empties after Enter").toHaveValue("", { timeout: 5_000 });
}

/** The message in the timeline showing `text` (its innermost element containing it). */
export function messageWithText(page, text) {
    return messagesLog(page).getByText(text, { exact: true });
}

function tickRole(scope, name) {
    return scope.getByRole("img", { name, exact: true }).or(scope.getByRole("status", { name, exact: true }));
}

/**
 * One's own message showing `text`: the innermost element of the log holding both the
 * text and a status element (role img or status) named exactly Sending/Sent/Delivered/Seen.
 */
export function ownMessage(page, text) {
    return messagesLog(page)
        .locator("*")
        .filter({ has: page.getByText(text, { exact: true }) })
        .filter({ has: tickRole(page, TICK_NAME) })
        .last();
}

/** The accessible name of the message's tick right now, or null if it has none. */
export async function tickName(page, text) {
    const message = ownMessage(page, text);
    for (const name of TICKS) {
        if ((await tickRole(message, name).count()) > 0) return name;
    }
    return null;
}

export async function openSettings(page) {
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const theme = themeControl(page);
    await expect(theme, "the Theme control in Settings").toBeVisible({ timeout: 10_000 });
    return theme;
}

/** The "Theme" control: a select (combobox/listbox) or a radio group. */
export function themeControl(page) {
    return page
        .getByRole("combobox", { name: "Theme" })
        .or(page.getByRole("listbox", { name: "Theme" }))
        .or(page.getByRole("radiogroup", { name: "Theme" }))
        .or(page.getByRole("group", { name: "Theme" }))
        .first();
}

export async function chooseTheme(page, label) {
    const control = themeControl(page);
    const tag = await control.evaluate((el) => el.tagName.toLowerCase());
    if (tag === "select") await control.selectOption({ label });
    else await control.getByRole("radio", { name: label, exact: true }).or(control.getByRole("option", { name: label, exact: true })).first().click();
}

export async function closePanel(page) {
    await page.keyboard.press("Escape");
}

export async function htmlTheme(page) {
    return page.evaluate(() => document.documentElement.dataset.theme ?? null);
}

/**
 * Waits until the page's service worker is activated: its install step precached the
 * app shell, and it will answer the next navigation (a reload) even offline.
 */
export async function serviceWorkerReady(page, timeout = 30_000) {
    await page.waitForFunction(
        async () => {
            if (!("serviceWorker" in navigator)) return false;
            const registration = await navigator.serviceWorker.getRegistration();
            return registration?.active?.state === "activated";
        },
        undefined,
        { timeout, polling: 250 },
    );
}
