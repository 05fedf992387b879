// Headless Chromium for the scenarios: one browser per run, one context per "device".
//
// Every page is watched: console errors, uncaught exceptions and CSP violations fail
// the scenario unless they are on the explicit list of harmless ones below (each with
// its reason) or the scenario allows them for a step where they are expected (offline).

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Console errors that are not faults of the app.  Chromium logs every HTTP answer >= 400
 * as "Failed to load resource", also for fetch(): the answers below are the spec's way
 * of saying "not here", which the SDK asks for and handles.
 */
export const HARMLESS_CONSOLE_ERRORS = [
    {
        // spec: client-server-api/modules/server_side_key_backups.md: 404 M_NOT_FOUND
        // when the user has no key backup; the Rust crypto asks at start.
        url: /\/_matrix\/client\/v3\/room_keys\/version$/,
        text: /status of 404/,
        reason: "no key backup yet (404 M_NOT_FOUND is the spec's answer)",
    },
    {
        // MSC4143 (MatrixRTC transports): the SDK probes it; 404 M_UNRECOGNIZED = not offered.
        url: /\/_matrix\/client\/unstable\/org\.matrix\.msc4143\/rtc\/transports$/,
        text: /status of 404/,
        reason: "optional MatrixRTC endpoint not offered (404 M_UNRECOGNIZED)",
    },
    {
        // The SDK asks for TURN servers at start (for calls); a server without TURN
        // configured answers 404 M_UNRECOGNIZED, which the SDK logs and then does without.
        url: /\/_matrix\/client\/v3\/voip\/turnServer$/,
        text: /status of 404/,
        reason: "no TURN server configured (404 M_UNRECOGNIZED; the app makes no calls)",
    },
    {
        text: /^Failed to get TURN URIs M_UNRECOGNIZED/,
        reason: "the SDK's own log line for the TURN answer above",
    },
    {
        // The Rust crypto reads its secret-storage and cross-signing account data at
        // start; before the user set any up, the spec's answer is 404 M_NOT_FOUND.
        url: /\/_matrix\/client\/v3\/user\/[^/]+\/account_data\/[^/]+$/,
        text: /status of 404/,
        reason: "account data not set yet (404 M_NOT_FOUND is the spec's answer)",
    },
    {
        // spec: client-server-api/_index.md#user-interactive-authentication-api: the
        // first request to an endpoint behind user-interactive auth is answered 401
        // with the flows and a session; the client then completes a stage and retries.
        url: /\/_matrix\/client\/v3\/(keys\/device_signing\/upload|delete_devices|devices\/[^/]+)$/,
        text: /status of 401/,
        reason: "the user-interactive auth challenge (401 with flows), answered by the app",
    },
];

/** Console errors expected while a context is offline (the scenario turns this on). */
export const OFFLINE_CONSOLE_ERRORS = [
    { text: /net::ERR_INTERNET_DISCONNECTED|Failed to fetch|NetworkError|ERR_NETWORK_CHANGED/, reason: "requests fail while offline: that is the point of the scenario" },
    { text: /WebSocket connection to .* failed/, reason: "the stream reconnects while offline" },
];

// Runs in every page before the app: lets the scenario hide/blur the page in a way the
// app sees through the standard signals (document.visibilityState, document.hidden,
// document.hasFocus(), and the visibilitychange/focus/blur events), and records the
// notifications the page raises while still raising them for real.
const PAGE_HOOKS = () => {
    let visible = true;
    let focused = true;
    const proto = Document.prototype;
    Object.defineProperty(proto, "visibilityState", { configurable: true, get: () => (visible ? "visible" : "hidden") });
    Object.defineProperty(proto, "hidden", { configurable: true, get: () => !visible });
    proto.hasFocus = function hasFocus() {
        return visible && focused;
    };
    window.__e2eSetPageState = (state) => {
        const wasVisible = visible;
        const wasFocused = visible && focused;
        visible = state.visible;
        focused = state.focused;
        if (wasVisible !== visible) document.dispatchEvent(new Event("visibilitychange"));
        const nowFocused = visible && focused;
        if (wasFocused !== nowFocused) window.dispatchEvent(new FocusEvent(nowFocused ? "focus" : "blur"));
    };

    const notifications = [];
    window.__e2eNotifications = notifications;
    const RealNotification = window.Notification;
    if (RealNotification) {
        const Recorded = function Notification(title, options) {
            notifications.push({ via: "Notification", title: String(title), body: options?.body ?? null, tag: options?.tag ?? null });
            return new RealNotification(title, options);
        };
        Recorded.prototype = RealNotification.prototype;
        Object.defineProperty(Recorded, "permission", { get: () => RealNotification.permission });
        Object.defineProperty(Recorded, "maxActions", { get: () => RealNotification.maxActions });
        Recorded.requestPermission = (...args) => RealNotification.requestPermission(...args);
        window.Notification = Recorded;
    }
    if (window.ServiceWorkerRegistration) {
        const realShow = ServiceWorkerRegistration.prototype.showNotification;
        ServiceWorkerRegistration.prototype.showNotification = function showNotification(title, options) {
            notifications.push({ via: "showNotification", title: String(title), body: options?.body ?? null, tag: options?.tag ?? null });
            return realShow.call(this, title, options);
        };
    }
    // Every value <html data-theme> takes, from the first: a flash of the wrong theme
    // shows as a wrong first value.
    const themes = [];
    window.__e2eThemeHistory = themes;
    new MutationObserver((records) => {
        for (const record of records) {
            if (record.target === document.documentElement) themes.push(document.documentElement.dataset.theme ?? null);
        }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-theme"] });

    // CSP violations are console errors in Chromium too; this makes them explicit.
    document.addEventListener("securitypolicyviolation", (event) => {
        console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
    });
};

export async function launchBrowser() {
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
    });
}

/**
 * Watches pages for errors.  `problems` collects the ones that fail the scenario;
 * `allowed` the harmless ones (with the reason), for the report.
 */
export class PageWatcher {
    constructor() {
        this.problems = [];
        this.allowed = [];
        this.offlineContexts = new Set();
    }

    watch(page, name) {
        page.on("console", (msg) => {
            if (msg.type() !== "error") return;
            this.#judge(page, name, msg.text(), msg.location()?.url ?? "");
        });
        page.on("pageerror", (error) => {
            this.#judge(page, name, `uncaught: ${error.message}`, "");
        });
    }

    /** While a context is offline, failed requests are expected in its pages. */
    setOffline(context, offline) {
        if (offline) this.offlineContexts.add(context);
        else this.offlineContexts.delete(context);
    }

    #judge(page, name, text, url) {
        const rules = [...HARMLESS_CONSOLE_ERRORS, ...(this.offlineContexts.has(page.context()) ? OFFLINE_CONSOLE_ERRORS : [])];
        const rule = rules.find((r) => r.text.test(text) && (!r.url || r.url.test(url)));
        const entry = { page: name, text: text.slice(0, 500), url };
        if (rule) this.allowed.push({ ...entry, reason: rule.reason });
        else this.problems.push(entry);
    }
}

/** A fresh browser profile (a "device"): its own storage, service workers and cookies. */
export async function newDevice(browser, watcher, baseUrl, name, options = {}) {
    const context = await browser.newContext({
        baseURL: baseUrl,
        viewport: options.viewport ?? DESKTOP,
        colorScheme: options.colorScheme ?? "light",
        serviceWorkers: "allow",
        permissions: options.permissions ?? [],
    });
    await context.addInitScript(PAGE_HOOKS);
    const page = await context.newPage();
    watcher.watch(page, name);
    context.on("page", (other) => watcher.watch(other, `${name}:popup`));
    return { name, context, page };
}

/** Make the page hidden/blurred (or back) as the app sees it through the standard signals. */
export async function setPageState(page, state) {
    if (state.visible && state.focused) await page.bringToFront();
    await page.evaluate((s) => window.__e2eSetPageState(s), state);
}

export async function recordedNotifications(page) {
    return page.evaluate(() => window.__e2eNotifications ?? []);
}
