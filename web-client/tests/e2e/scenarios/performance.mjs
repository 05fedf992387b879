// Issue 15 "Performance": the bundle size (gzipped JS + CSS + wasm the page loads on a
// cold start, and in all once signed in with a room open) and time to interactive on a cold load and a warm (service worker) load.
//
// TTI here: from navigation start (performance.timeOrigin) until the composer textbox
// ("Message") or the login form's "Sign in" button is visible and enabled, taken
// with performance.now() in the page, checked every animation frame.
//
// - cold_login: a fresh browser profile (no cache, no service worker) opening "/".
// - warm_login: the same profile again once its service worker is active.
// - warm_app: signed in with a room open, reloaded (service worker, IndexedDB): until
//   the composer (or, if the app does not reopen the room, the "Rooms" navigation —
//   recorded as the marker) is usable.

import { gzipSync } from "node:zlib";
import { openRoom, serviceWorkerReady, signIn } from "../support/app.mjs";
import { check } from "../support/expect.mjs";
import { requireUsers } from "../support/setup.mjs";

const RUNS = Number(process.env.E2E_PERF_RUNS || 3);

// Runs in the page: resolves with performance.now() when an interactive marker shows.
const INTERACTIVE = (markers) =>
    new Promise((resolve) => {
        const usable = (el) => {
            if (!el || el.disabled || el.getAttribute("aria-disabled") === "true") return false;
            const box = el.getBoundingClientRect();
            return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden";
        };
        const find = (marker) => {
            if (marker === "composer") return document.querySelector('textarea[aria-label="Message"], [role="textbox"][aria-label="Message"], input[aria-label="Message"]');
            if (marker === "rooms") return document.querySelector('nav[aria-label="Rooms"]');
            return [...document.querySelectorAll("button")].find((b) => b.textContent?.trim() === "Sign in");
        };
        const tick = () => {
            for (const marker of markers) {
                if (usable(find(marker))) {
                    performance.mark("e2e-interactive");
                    resolve({ marker, ms: performance.now() });
                    return;
                }
            }
            requestAnimationFrame(tick);
        };
        tick();
    });

const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null;
};

async function interactive(page, markers) {
    await page.waitForLoadState("domcontentloaded");
    const found = await page.evaluate(INTERACTIVE, markers);
    return { ...found, ms: Math.round(found.ms) };
}

export default async function performance(ctx) {
    requireUsers(ctx, "alice");
    const cold = [];
    const warmLogin = [];
    let resources = [];

    ctx.step("cold and warm loads of the login screen");
    for (let run = 0; run < RUNS; run++) {
        const { page } = await ctx.device(`cold-${run}`);
        await page.goto("/");
        cold.push(await interactive(page, ["signin"]));
        if (run === 0) resources = await loadedResources(page);
        await serviceWorkerReady(page);
        await page.reload();
        warmLogin.push(await interactive(page, ["signin"]));
    }

    ctx.step("warm loads of the signed-in app");
    const { page } = await ctx.device("signed-in");
    await signIn(page, ctx.users.alice);
    const roomId = await ctx.api("alice").createRoom({ name: "Perf" });
    await ctx.api("alice").sendText(roomId, "warming up");
    await openRoom(page, "Perf");
    const signedInResources = await loadedResources(page);
    await serviceWorkerReady(page);
    const warmApp = [];
    for (let run = 0; run < RUNS; run++) {
        await page.reload();
        warmApp.push(await interactive(page, ["composer", "rooms"]));
    }

    ctx.step("bundle size");
    const bundle = await bundleSize(ctx.baseUrl, resources);
    check(bundle.files.length > 0, "the page loaded no script or style");
    // Signing in loads the rest: the crypto (wasm) and whatever is split off.
    const signedIn = await bundleSize(ctx.baseUrl, signedInResources);
    ctx.result.performance = {
        runs: RUNS,
        tti_ms: {
            cold_login: median(cold.map((r) => r.ms)),
            warm_login: median(warmLogin.map((r) => r.ms)),
            warm_app: median(warmApp.map((r) => r.ms)),
        },
        warm_app_marker: warmApp.map((r) => r.marker),
        samples: { cold_login: cold, warm_login: warmLogin, warm_app: warmApp },
        bundle,
        bundle_signed_in: signedIn,
        browser: ctx.browser.version(),
    };
}

/** The same-origin JS, CSS and wasm the page loaded, from the browser's resource timing. */
async function loadedResources(page) {
    // Let lazily started work (the crypto wasm, workers) begin loading.
    await page.waitForTimeout(2_000);
    return page.evaluate(() =>
        performance
            .getEntriesByType("resource")
            .filter((e) => new URL(e.name).origin === location.origin && /\.(m?js|css|wasm)(\?|$)/.test(new URL(e.name).pathname))
            .map((e) => ({ url: new URL(e.name).pathname, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
    );
}

/** Each file's size raw and gzipped (zlib level 9 over the bytes the server serves). */
async function bundleSize(baseUrl, resources) {
    const files = [];
    for (const resource of resources) {
        const response = await fetch(baseUrl + resource.url, { headers: { "Accept-Encoding": "identity" } });
        const bytes = Buffer.from(await response.arrayBuffer());
        files.push({ ...resource, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
    }
    const sum = (key) => files.reduce((total, f) => total + (f[key] || 0), 0);
    return { files, total_raw: sum("raw"), total_gzip: sum("gzip"), total_transfer: sum("transfer") };
}
