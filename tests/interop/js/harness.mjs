// Shared machinery for the matrix-js-sdk scenarios (see scenarios.mjs).
//
// - Polyfills what js-sdk 43 expects of Node 22 before the SDK is imported.
// - Gives the Rust crypto (matrix-sdk-crypto-wasm) an IndexedDB to keep its store in:
//   fake-indexeddb, in memory, one database per client (see startCrypto).
// - Keeps the SDK's logging off stdout: stdout carries exactly one JSON line, the result.
// - Records every HTTP request each client makes (method, path, status), which is both
//   what the tests assert on and the diagnostic when something stalls.
// - A hard deadline: a stalled scenario reports the step it was at and the failed
//   requests, then exits, instead of hanging.

if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

// Everything written through console (the SDK's global logger among it) goes to a ring
// buffer, dumped to stderr only when the scenario fails.
const LOG_LIMIT = 400;
const logLines = [];

function remember(level, args) {
    const text = args
        .map((arg) => {
            // An error's message and where it was raised; whole stacks would crowd out the log.
            if (arg instanceof Error) return (arg.stack ?? String(arg)).split("\n").slice(0, 3).join("\n");
            if (typeof arg === "string") return arg;
            try {
                return JSON.stringify(arg);
            } catch {
                return String(arg);
            }
        })
        .join(" ");
    logLines.push(`[${level}] ${text}`);
    if (logLines.length > LOG_LIMIT) logLines.shift();
}

for (const level of ["log", "debug", "info", "warn", "error", "trace"]) {
    console[level] = (...args) => remember(level, args);
}

// Node has no IndexedDB; the Rust crypto's store needs one (or runs without persistence,
// which is not how real clients run it).
await import("fake-indexeddb/auto");

export const sdk = await import("matrix-js-sdk");
/** The crypto API's own entry point (CryptoEvent and friends are not re-exported by the SDK's). */
export const cryptoApi = await import("matrix-js-sdk/lib/crypto-api/index.js");

/** A Logger (the SDK's interface) for one client, writing to the ring buffer. */
export function clientLogger(name) {
    const make = (prefix) => ({
        trace: (...msg) => remember("trace", [prefix, ...msg]),
        debug: (...msg) => remember("debug", [prefix, ...msg]),
        info: (...msg) => remember("info", [prefix, ...msg]),
        warn: (...msg) => remember("warn", [prefix, ...msg]),
        error: (...msg) => remember("error", [prefix, ...msg]),
        getChild: (namespace) => make(`${prefix}${namespace}`),
    });
    return make(`${name}:`);
}

/** Every request made by every client: {client, method, path, status} or {…, error}. */
export const requests = [];

/** Requests the server refused, or that failed without an answer (aborts excluded). */
export function failedRequests() {
    return requests.filter((r) => (r.status !== undefined ? r.status >= 400 : r.error && !r.aborted));
}

/** Requests still waiting for an answer (a long-polling /sync, or a stall). */
export function pendingRequests() {
    return requests.filter((r) => r.status === undefined && r.error === undefined);
}

/** A fetch for createClient({fetchFn}) that records each request of client `name`. */
export function recordingFetch(name) {
    return async (input, init = {}) => {
        const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
        const entry = { client: name, method: (init.method ?? "GET").toUpperCase(), path: url.pathname };
        requests.push(entry);
        try {
            const response = await fetch(input, init);
            entry.status = response.status;
            if (response.status >= 400) {
                entry.body = (await response.clone().text()).slice(0, 300);
            }
            return response;
        } catch (error) {
            entry.aborted = error?.name === "AbortError";
            entry.error = String(error);
            throw error;
        }
    };
}

/** Credentials for each user, given by the Python side as JSON on stdin. */
export async function readInput() {
    let text = "";
    for await (const chunk of process.stdin) text += chunk;
    return JSON.parse(text);
}

/** A client for one user of the input, recording its requests. */
export function makeClient(baseUrl, name, user) {
    return sdk.createClient({
        baseUrl,
        accessToken: user.access_token,
        userId: user.user_id,
        deviceId: user.device_id,
        fetchFn: recordingFetch(name),
        logger: clientLogger(name),
    });
}

/**
 * Initialise `client`'s Rust crypto (before startClient), with its own IndexedDB store:
 * clients in one process must not share one, as two devices never do.
 */
export async function startCrypto(client, name) {
    await client.initRustCrypto({ cryptoDatabasePrefix: `interop-${name}-${client.getDeviceId()}` });
    return client.getCrypto();
}

/**
 * Resolve once the async `check()` holds: now, or after one of `eventNames` is next
 * emitted by `emitter` (each emission re-runs the check, never two at once).
 */
export function untilAsync(emitter, eventNames, check) {
    const { promise, resolve, reject } = Promise.withResolvers();
    let running = false;
    let again = false;
    let done = false;
    const stop = () => {
        done = true;
        for (const eventName of eventNames) emitter.off(eventName, recheck);
    };
    async function recheck() {
        if (done) return;
        if (running) {
            again = true;
            return;
        }
        running = true;
        try {
            do {
                again = false;
                if (await check()) {
                    stop();
                    resolve();
                    return;
                }
            } while (again && !done);
        } catch (error) {
            stop();
            reject(error);
        } finally {
            running = false;
        }
    }
    for (const eventName of eventNames) emitter.on(eventName, recheck);
    recheck();
    return promise;
}

/**
 * Resolve with `event` once it is decrypted: now, or when a later attempt succeeds (the
 * SDK retries when the room key arrives after the event).  Failed attempts are logged,
 * which is the diagnostic if the key never comes.
 */
export function untilDecrypted(event, name) {
    const decrypted = () => !event.isBeingDecrypted() && event.getClearContent() !== null && !event.isDecryptionFailure();
    if (decrypted()) return Promise.resolve(event);
    const { promise, resolve } = Promise.withResolvers();
    const onDecrypted = () => {
        if (decrypted()) {
            event.off(sdk.MatrixEventEvent.Decrypted, onDecrypted);
            resolve(event);
        } else if (event.isDecryptionFailure()) {
            remember("warn", [`${name}: cannot decrypt ${event.getId()} yet: ${event.decryptionFailureReason}`]);
        }
    };
    event.on(sdk.MatrixEventEvent.Decrypted, onDecrypted);
    return promise;
}

/**
 * Start `client` and wait for its first sync (state PREPARED); returns the list of sync
 * states it went through, which keeps growing afterwards.  An ERROR state before
 * PREPARED fails at once: the SDK would retry for ever (it does so for a failing
 * /pushrules/ among others), and against a local server no error is transient.
 */
export async function startAndWaitPrepared(client, opts = { initialSyncLimit: 10, lazyLoadMembers: true }) {
    const states = [];
    const prepared = Promise.withResolvers();
    client.on(sdk.ClientEvent.Sync, (state, _previous, data) => {
        states.push(state);
        if (state === sdk.SyncState.Prepared) prepared.resolve();
        if (state === sdk.SyncState.Error) {
            remember("error", [`${client.getUserId()}: sync state ERROR`, data?.error]);
            prepared.reject(new Error(`${client.getUserId()}: sync went to ERROR before PREPARED: ${data?.error}`));
        }
    });
    await client.startClient(opts);
    await prepared.promise;
    return states;
}

/**
 * Collect every emission of `eventName` on `emitter` from now on; `until(predicate)`
 * resolves with the arguments of the first emission, past or future, that matches.
 * Start watching before the action that causes the emission, so none is missed.
 */
export function watch(emitter, eventName) {
    const seen = [];
    const waiters = [];
    const listener = (...args) => {
        seen.push(args);
        for (const waiter of [...waiters]) {
            if (waiter.predicate(...args)) {
                waiters.splice(waiters.indexOf(waiter), 1);
                waiter.resolve(args);
            }
        }
    };
    emitter.on(eventName, listener);
    return {
        seen,
        until(predicate) {
            const hit = seen.find((args) => predicate(...args));
            if (hit) return Promise.resolve(hit);
            const { promise, resolve } = Promise.withResolvers();
            waiters.push({ predicate, resolve });
            return promise;
        },
        stop() {
            emitter.off(eventName, listener);
        },
    };
}

/**
 * Resolve once `check()` holds for `client`: now, or after one of the client's later sync
 * responses has been processed (or a room has been added to its store).
 */
export function untilClient(client, check) {
    if (check()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers();
    const recheck = () => {
        if (!check()) return;
        client.off(sdk.ClientEvent.Sync, recheck);
        client.off(sdk.ClientEvent.Room, recheck);
        resolve();
    };
    client.on(sdk.ClientEvent.Sync, recheck);
    client.on(sdk.ClientEvent.Room, recheck);
    return promise;
}

/** What a rejected SDK call carried: the Matrix error code and HTTP status. */
export async function rejection(promise) {
    try {
        await promise;
        return { rejected: false };
    } catch (error) {
        return {
            rejected: true,
            errcode: error?.errcode ?? null,
            http_status: error?.httpStatus ?? null,
        };
    }
}

function lines(entries) {
    return entries.map((r) => "  " + JSON.stringify(r)).join("\n") || "  (none)";
}

/**
 * Run `scenario(context)` under a hard deadline and print its result as one JSON line.
 * `context.step(name)` marks progress; the step reached is reported on a stall or error.
 */
export async function runScenario(scenario, { deadlineMs = 60_000 } = {}) {
    const [baseUrl] = process.argv.slice(3);
    const progress = { step: "reading input", steps: [] };
    const clients = [];
    let finished = false;
    const finish = (exitCode, payload) => {
        if (finished) return;
        finished = true;
        const failed = failedRequests();
        const pending = pendingRequests();
        for (const client of clients) {
            try {
                client.stopClient();
            } catch {
                // stopping is best effort; the process exits next anyway
            }
        }
        const report = {
            ...payload,
            steps: progress.steps,
            failed_requests: failed,
            pending_requests: pending,
            requests,
        };
        const diagnostics =
            exitCode === 0
                ? ""
                : `last log lines:\n${logLines.slice(-60).join("\n")}\n\n` +
                  `scenario failed at step: ${progress.step}\n${payload.error}\n` +
                  `failed requests:\n${lines(failed)}\n` +
                  `requests still waiting for an answer:\n${lines(pending)}\n`;
        // Exit only once both streams are flushed (the SDK's timers would keep Node alive).
        process.stdout.write(JSON.stringify(report) + "\n", () =>
            process.stderr.write(diagnostics, () => process.exit(exitCode)),
        );
    };
    const timer = setTimeout(
        () => finish(3, { ok: false, step: progress.step, error: `timed out after ${deadlineMs} ms` }),
        deadlineMs,
    );
    try {
        const input = await readInput();
        const context = {
            baseUrl,
            users: input.users,
            step(name) {
                progress.step = name;
                progress.steps.push(name);
            },
            client(name) {
                const client = makeClient(baseUrl, name, input.users[name]);
                clients.push(client);
                return client;
            },
            /** Log in as `input.logins[name]` (a new device), then a client for it. */
            async login(name) {
                const { user, password } = input.logins[name];
                const anonymous = sdk.createClient({ baseUrl, fetchFn: recordingFetch(name), logger: clientLogger(name) });
                const response = await anonymous.loginRequest({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user },
                    password,
                    initial_device_display_name: name,
                });
                const client = makeClient(baseUrl, name, response);
                clients.push(client);
                return client;
            },
        };
        const result = await scenario(context);
        clearTimeout(timer);
        finish(0, { ok: true, result });
    } catch (error) {
        clearTimeout(timer);
        finish(1, { ok: false, step: progress.step, error: error?.stack ?? String(error) });
    }
}
