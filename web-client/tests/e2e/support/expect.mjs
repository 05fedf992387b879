// A few waiting assertions over playwright-core locators (playwright-core has no
// `expect`; @playwright/test is not a dependency).  Each failure says what was awaited.

export class ScenarioFailure extends Error {}

/** Polls `probe` until it returns a truthy value, or fails with `what` and the last value seen. */
export async function eventually(probe, what, { timeout = 15_000, interval = 200 } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await probe();
            if (last) return last;
        } catch (error) {
            last = `error: ${error.message.split("\n")[0]}`;
        }
        if (Date.now() > deadline) throw new ScenarioFailure(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
        await new Promise((r) => setTimeout(r, interval));
    }
}

export function expect(locator, what) {
    const wait = async (state, timeout) => {
        try {
            await locator.waitFor({ state, timeout });
        } catch (error) {
            throw new ScenarioFailure(`${what}: not ${state} within ${timeout} ms (${locator}) — ${error.message.split("\n")[0]}`);
        }
    };
    return {
        toBeVisible: ({ timeout = 15_000 } = {}) => wait("visible", timeout),
        toBeHidden: ({ timeout = 15_000 } = {}) => wait("hidden", timeout),
        toHaveValue: (value, { timeout = 15_000 } = {}) => eventually(async () => (await locator.inputValue()) === value, `${what} (value ${JSON.stringify(value)})`, { timeout }),
        toHaveCount: (count, { timeout = 15_000 } = {}) => eventually(async () => (await locator.count()) === count, `${what} (count ${count})`, { timeout }),
        toBeEnabled: ({ timeout = 15_000 } = {}) => eventually(() => locator.isEnabled(), `${what} (enabled)`, { timeout }),
    };
}

export function check(condition, message) {
    if (!condition) throw new ScenarioFailure(message);
}
