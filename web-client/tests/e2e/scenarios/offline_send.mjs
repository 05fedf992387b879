// Issue 15: "going offline, sending, and coming back delivers the message exactly
// once".  alice's browser goes offline: the "Offline" status shows; she sends two
// messages; back online, both reach the room once each, in order (checked on the
// server through bob's API access and on bob's page).

import { messageWithText, openRoom, sendMessage, signIn, tickName } from "../support/app.mjs";
import { check, eventually, expect } from "../support/expect.mjs";
import { roomWithBob, uniqueName } from "../support/setup.mjs";

export default async function offlineSend(ctx) {
    const { roomId, roomName, bob: bobApi } = await roomWithBob(ctx, { name: "Outbox" });
    ctx.step("both sign in and open the room");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);
    await Promise.all([openRoom(alice.page, roomName), openRoom(bob.page, roomName)]);

    // Every attempt alice's page makes to send an event, for the report: what the outbox did.
    const attempts = [];
    ctx.result.send_attempts = attempts;
    const isSend = (request) => request.method() === "PUT" && /\/send\/m\.room\.message\//.test(request.url());
    const txn = (request) => decodeURIComponent(request.url().split("/").pop());
    alice.page.on("requestfinished", async (request) => {
        if (isSend(request)) attempts.push({ at: Date.now(), txn: txn(request), status: (await request.response())?.status() ?? null });
    });
    alice.page.on("requestfailed", (request) => {
        if (isSend(request)) attempts.push({ at: Date.now(), txn: txn(request), failure: request.failure()?.errorText ?? "failed" });
    });

    ctx.step("alice goes offline: the Offline status shows");
    ctx.watcher.setOffline(alice.context, true);
    await alice.context.setOffline(true);
    const offline = alice.page.getByText(/Offline/).first();
    await expect(offline, "the Offline status").toBeVisible({ timeout: 15_000 });

    ctx.step("alice sends two messages while offline");
    const first = uniqueName("written offline, first");
    const second = uniqueName("written offline, second");
    await sendMessage(alice.page, first);
    await sendMessage(alice.page, second);
    await expect(messageWithText(alice.page, second), "the queued message on alice's page").toBeVisible({ timeout: 5_000 });
    ctx.result.tick_while_offline = await tickName(alice.page, second);
    await alice.page.waitForTimeout(3_000);
    const early = (await bobApi.messages(roomId)).filter((e) => [first, second].includes(e.content.body));
    check(early.length === 0, `the server got ${early.length} of the messages while alice was offline`);

    ctx.step("alice comes back online: the status goes away");
    await alice.context.setOffline(false);
    ctx.watcher.setOffline(alice.context, false);
    ctx.result.online_again_at = Date.now();
    await expect(offline, "the Offline status after reconnecting").toBeHidden({ timeout: 30_000 });

    ctx.step("bob gets both, once each, in order");
    await expect(messageWithText(bob.page, second), "the second message on bob's page").toBeVisible({ timeout: 30_000 });
    await eventually(async () => (await tickName(alice.page, second)) !== "Sending", "alice's tick leaving Sending", { timeout: 30_000 });
    // Retries (if any) have had time to land: still exactly one of each.
    await alice.page.waitForTimeout(3_000);
    const bodies = (await bobApi.messages(roomId)).map((e) => e.content.body).filter((b) => [first, second].includes(b));
    ctx.result.bodies = bodies;
    ctx.result.first = first;
    ctx.result.second = second;
    check(JSON.stringify(bodies) === JSON.stringify([first, second]), `the room has ${JSON.stringify(bodies)}, not each message once in order`);
    for (const text of [first, second]) {
        const shown = await messageWithText(bob.page, text).count();
        check(shown === 1, `bob's page shows ${JSON.stringify(text)} ${shown} times`);
        const own = await messageWithText(alice.page, text).count();
        check(own === 1, `alice's page shows ${JSON.stringify(text)} ${own} times`);
    }
}
