// Issue 15: "a notification is raised when the page is hidden".  alice's context has
// the notifications permission; her page goes to the background; bob writes; the page
// raises a notification carrying his text (recorded by the hook in support/browser.mjs,
// which still calls the real Notification).  While the page is visible, none is raised.

import { messageWithText, openRoom, roomEntry, signIn } from "../support/app.mjs";
import { recordedNotifications, setPageState } from "../support/browser.mjs";
import { check, eventually, expect } from "../support/expect.mjs";
import { roomWithBob } from "../support/setup.mjs";

export default async function notification(ctx) {
    const { roomId, roomName, bob: bobApi } = await roomWithBob(ctx, { name: "Pings" });
    ctx.step("alice signs in (notifications allowed)");
    const alice = await ctx.device("alice", { permissions: ["notifications"] });
    await signIn(alice.page, ctx.users.alice);
    await expect(roomEntry(alice.page, roomName), "the room in alice's list").toBeVisible({ timeout: 30_000 });
    ctx.result.permission = await alice.page.evaluate(() => Notification.permission);

    ctx.step("a message while the page is visible raises none");
    await openRoom(alice.page, roomName);
    const visibleText = "You are looking at this one";
    await bobApi.sendText(roomId, visibleText);
    await expect(messageWithText(alice.page, visibleText), "bob's message on alice's page").toBeVisible({ timeout: 30_000 });
    await alice.page.waitForTimeout(1_000);
    check((await recordedNotifications(alice.page)).length === 0, `notified while visible: ${JSON.stringify(await recordedNotifications(alice.page))}`);

    ctx.step("alice's page goes to the background; bob writes");
    await setPageState(alice.page, { visible: false, focused: false });
    const text = "Ping while you are away";
    await bobApi.sendText(roomId, text);

    ctx.step("a notification with bob's text is raised");
    const raised = await eventually(
        async () => (await recordedNotifications(alice.page)).find((n) => `${n.title} ${n.body}`.includes(text)),
        "a notification carrying bob's text",
        { timeout: 30_000 },
    );
    ctx.result.notification = raised;
}
