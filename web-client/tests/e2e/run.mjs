#!/usr/bin/env node
// Runs one browser scenario (scenarios/<name>.mjs) against a running homeserver that
// serves the web client, in headless Chromium driven by playwright-core.
//
//   node tests/e2e/run.mjs <scenario> --base-url http://127.0.0.1:8008 \
//        --users users.json --out /tmp/dir [--deadline-ms 120000]
//
// users.json: {"alice": {"user_id", "localpart", "password", "access_token", "device_id"}, ...}
// (registered by the caller; the scenario signs in through the UI, which makes a new
// device, and uses the access token only to set up rooms and check the server's side).
//
// Prints exactly one JSON line on stdout and writes the same to <out>/result.json:
// {ok, scenario, step, steps, error, result, console: {problems, allowed}, screenshots}.
// A console error, an uncaught exception or a CSP violation in any page fails the
// scenario (support/browser.mjs lists the harmless ones).  Exit status 0 only if ok.

import { mkdir, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { launchBrowser, newDevice, PageWatcher } from "./support/browser.mjs";
import { Api } from "./support/matrix.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));

const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
        "base-url": { type: "string" },
        users: { type: "string" },
        out: { type: "string" },
        "deadline-ms": { type: "string", default: "120000" },
    },
});
const scenarioName = positionals[0];
if (!scenarioName || !values["base-url"] || !values.out || !/^[a-z_]+$/.test(scenarioName)) {
    process.stderr.write("usage: run.mjs <scenario> --base-url URL --users users.json --out DIR [--deadline-ms N]\n");
    process.exit(2);
}
const baseUrl = values["base-url"].replace(/\/$/, "");
const out = path.resolve(values.out);
const users = values.users ? JSON.parse(readFileSync(values.users, "utf8")) : {};
const deadlineMs = Number(values["deadline-ms"]);
await mkdir(out, { recursive: true });

const report = { ok: false, scenario: scenarioName, step: "start", steps: [], error: null, result: {}, console: {}, screenshots: [] };
const watcher = new PageWatcher();
const devices = [];
let browser;

const ctx = {
    baseUrl,
    users,
    out,
    watcher,
    result: report.result,
    get browser() {
        return browser;
    },
    /** Marks progress: a failure reports the step it happened in. */
    step(name) {
        report.steps.push(name);
        report.step = name;
        process.stderr.write(`[${new Date().toISOString()}] ${scenarioName}: ${name}\n`);
    },
    /** A new browser profile (a device) with one page; closed at the end. */
    async device(name, options) {
        const device = await newDevice(browser, watcher, baseUrl, name, options);
        devices.push(device);
        return device;
    },
    api(userName) {
        return new Api(baseUrl, users[userName]);
    },
    /** A screenshot to keep: written under <out>/screens/, listed in the report. */
    async screenshot(page, name, options = {}) {
        const file = path.join(out, "screens", `${name}.png`);
        await mkdir(path.dirname(file), { recursive: true });
        await page.screenshot({ path: file, ...options });
        report.screenshots.push({ name, path: file });
        return file;
    },
};

async function run() {
    const scenario = (await import(path.join(HERE, "scenarios", `${scenarioName}.mjs`))).default;
    browser = await launchBrowser();
    await scenario(ctx);
}

let timer;
const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario deadline of ${deadlineMs} ms passed`)), deadlineMs);
});

try {
    await Promise.race([run(), deadline]);
    report.ok = true;
} catch (error) {
    // playwright's messages carry terminal colour codes; the report is read as plain text
    const text = error?.stack ? String(error.stack).split("\n").slice(0, 8).join("\n") : String(error);
    report.error = text.replace(/\u001b\[[0-9;]*m/g, "");
    for (const device of devices) {
        for (const [i, page] of device.context.pages().entries()) {
            const file = path.join(out, `failure-${device.name}-${i}.png`);
            try {
                await page.screenshot({ path: file, timeout: 5_000 });
                report.screenshots.push({ name: `failure-${device.name}-${i}`, path: file });
            } catch {
                // the page may be gone; the report says enough
            }
        }
    }
} finally {
    clearTimeout(timer);
}

report.console = { problems: watcher.problems, allowed: watcher.allowed };
if (report.ok && watcher.problems.length > 0) {
    report.ok = false;
    report.error = `errors in the page's console: ${watcher.problems.map((p) => `${p.page}: ${p.text}`).join(" | ")}`;
}

try {
    await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 10_000))]);
} catch {
    // closing a crashed browser may fail; the report is what matters
}
const line = JSON.stringify(report);
await writeFile(path.join(out, "result.json"), line + "\n");
process.stdout.write(line + "\n");
process.exit(report.ok ? 0 : 1);
