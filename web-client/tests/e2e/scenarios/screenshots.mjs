// Issue 15: "screenshots of the main screens, light and dark".  Login, the room list
// with an open conversation, settings and room settings, in both themes, at a desktop
// (1280x800) and a phone (390x844) size, into <out>/screens/<theme>-<size>-<screen>.png.
// bench/bench_web_client.py --keep-screenshots copies a chosen few to docs/screenshots/.

import { closePanel, messageWithText, openRoom, roomEntry, roomsNav, sendMessage, signIn, tickName } from "../support/app.mjs";
import { DESKTOP, PHONE } from "../support/browser.mjs";
import { eventually, expect } from "../support/expect.mjs";
import { requireUsers } from "../support/setup.mjs";

const CONVERSATION = [
    ["alice", "Morning! Did the new build go out?"],
    ["bob", "Yes, about an hour ago. Everything green."],
    ["alice", "Great, I'll tell the others. Lunch at noon?"],
    ["bob", "Sounds good, see you there."],
];

export default async function screenshots(ctx) {
    requireUsers(ctx, "alice", "bob");
    const alice = ctx.api("alice");
    const bob = ctx.api("bob");
    ctx.step("a room with a conversation, and another room");
    const roomName = "Release team";
    const roomId = await alice.createRoom({ name: roomName, invite: [ctx.users.bob] });
    await bob.join(roomId);
    const other = await bob.createRoom({ name: "Weekend plans", invite: [ctx.users.alice] });
    await alice.join(other);
    await bob.sendText(other, "Anyone up for a hike on Saturday?");

    // bob reads and answers in his own browser, so his device's delivered and read
    // receipts give alice's messages their real ticks (Seen) in the screenshots.
    ctx.step("the conversation: alice through the API, bob through his app");
    const bobPage = (await ctx.device("bob")).page;
    await signIn(bobPage, ctx.users.bob);
    await openRoom(bobPage, roomName);
    for (const [who, text] of CONVERSATION) {
        if (who === "alice") {
            await alice.sendText(roomId, text);
            await expect(messageWithText(bobPage, text), "alice's line on bob's page").toBeVisible({ timeout: 30_000 });
        } else {
            await sendMessage(bobPage, text);
        }
    }
    const lastOwn = CONVERSATION.filter(([who]) => who === "alice").at(-1)[1];

    for (const theme of ["light", "dark"]) {
        for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
            const prefix = `${theme}-${size}`;
            ctx.step(`${prefix}: screens`);
            const { page } = await ctx.device(prefix, { colorScheme: theme, viewport });
            await page.goto("/");
            await expect(page.getByRole("button", { name: "Sign in", exact: true }), "the login form").toBeVisible({ timeout: 30_000 });
            await ctx.screenshot(page, `${prefix}-login`);
            await signIn(page, ctx.users.alice);
            // The list once it is there in full (both rooms, their last messages).
            await expect(roomEntry(page, "Weekend plans"), "the room list").toBeVisible({ timeout: 30_000 });
            await expect(roomEntry(page, roomName), "the room list").toBeVisible({ timeout: 30_000 });
            if (size === "phone") await ctx.screenshot(page, `${prefix}-rooms`);
            await openRoom(page, roomName);
            await expect(messageWithText(page, CONVERSATION.at(-1)[1]), "the conversation").toBeVisible({ timeout: 30_000 });
            await eventually(async () => (await tickName(page, lastOwn)) === "Seen", "alice's last line Seen (bob read it)", { timeout: 30_000 });
            await page.evaluate(() => document.fonts.ready);
            await ctx.screenshot(page, `${prefix}-room`);
            await page.getByRole("button", { name: "Room settings" }).first().click();
            await page.getByRole("dialog").first().waitFor({ state: "visible", timeout: 10_000 });
            await ctx.screenshot(page, `${prefix}-room-settings`);
            await closePanel(page);
            await page.getByRole("button", { name: "Settings", exact: true }).click();
            await page.getByRole("dialog").first().waitFor({ state: "visible", timeout: 10_000 });
            await ctx.screenshot(page, `${prefix}-settings`);
            await closePanel(page);
            if (size === "desktop") await expect(roomsNav(page), "the room list").toBeVisible();
        }
    }
}
