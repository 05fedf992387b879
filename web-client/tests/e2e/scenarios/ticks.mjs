// Issue 15: "ticks go sent → delivered → seen".  While bob's page is hidden and
// unfocused, alice's message reaches bob's device (Delivered, from the server's
// dev.homeserver.delivered receipt) but is not Seen; once bob's page is visible and
// focused with the room open, his m.read receipt turns it Seen.
//
// Every accessible name the message's status element takes is recorded in alice's
// page by a MutationObserver installed before sending, so a state that shows for one
// frame only (Sent) is seen too; polling from Node could miss it.

import { openRoom, sendMessage, signIn, TICKS } from "../support/app.mjs";
import { setPageState } from "../support/browser.mjs";
import { check, eventually } from "../support/expect.mjs";
import { roomWithBob } from "../support/setup.mjs";

export default async function ticks(ctx) {
    const { roomName } = await roomWithBob(ctx, { name: "Ticks" });
    ctx.step("both sign in and open the room");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);
    await Promise.all([openRoom(alice.page, roomName), openRoom(bob.page, roomName)]);

    ctx.step("bob's page goes to the background");
    await setPageState(bob.page, { visible: false, focused: false });

    ctx.step("alice sends; the tick goes to Delivered");
    const text = "Did this reach you?";
    await recordTicks(alice.page, text);
    await sendMessage(alice.page, text);
    await eventually(async () => (await recorded(alice.page)).at(-1) === "Delivered", "the tick Delivered while bob's page is hidden", { timeout: 30_000, interval: 50 });

    ctx.step("not Seen while bob's page is hidden");
    // Bob's device has the message (Delivered); a read receipt, if the app wrongly sent
    // one, would follow within a sync round trip.  Bob's page reports it has the event:
    await eventually(() => bob.page.getByText(text, { exact: true }).count(), "the message in bob's (hidden) timeline", { timeout: 15_000 });
    await alice.page.waitForTimeout(4_000);
    const hidden = await recorded(alice.page);
    check(!hidden.includes("Seen"), `Seen while bob's page was hidden: ${hidden.join(" → ")}`);

    ctx.step("bob looks at the room: Seen");
    await setPageState(bob.page, { visible: true, focused: true });
    await eventually(async () => (await recorded(alice.page)).at(-1) === "Seen", "the tick Seen once bob's page is visible and focused", { timeout: 30_000, interval: 100 });

    const sequence = await recorded(alice.page);
    ctx.result.sequence = sequence;
    const order = sequence.map((name) => TICKS.indexOf(name));
    check(order.every((v, i) => v >= 0 && (i === 0 || v > order[i - 1])), `the ticks went backwards or off the list: ${sequence.join(" → ")}`);
    check(sequence.includes("Sent"), `the tick never showed Sent: ${sequence.join(" → ")}`);
    check(sequence.includes("Delivered") && sequence.includes("Seen"), `Delivered or Seen missing: ${sequence.join(" → ")}`);
}

/**
 * Installs in the page a MutationObserver that records, on every DOM change, the
 * accessible name of the status element (role status or img, named one of TICKS) of
 * the own message showing `text`, whenever it differs from the last one recorded.
 */
async function recordTicks(page, text) {
    await page.evaluate(
        ({ text, ticks }) => {
            const names = new Set(ticks);
            const sequence = [];
            window.__e2eTicks = sequence;
            const current = () => {
                // Looked up each time: the timeline may render a new log element.
                const log = document.querySelector('[role="log"][aria-label="Messages"]');
                if (!log) return null;
                for (const element of log.querySelectorAll("*")) {
                    if (element.children.length > 0 || element.textContent.trim() !== text) continue;
                    // From the text up to the nearest ancestor that holds a status element.
                    for (let box = element.parentElement; box && box !== log; box = box.parentElement) {
                        const status = [...box.querySelectorAll('[role="status"],[role="img"]')].find((s) => names.has(s.getAttribute("aria-label")));
                        if (status) return status.getAttribute("aria-label");
                    }
                }
                return null;
            };
            const look = () => {
                const name = current();
                if (name && sequence.at(-1) !== name) sequence.push(name);
            };
            new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["aria-label", "role"] });
            look();
        },
        { text, ticks: TICKS },
    );
}

async function recorded(page) {
    return page.evaluate(() => [...(window.__e2eTicks ?? [])]);
}
