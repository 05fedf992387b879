// Issue 15: "the typing indicator shows".  While bob types (without sending) alice's
// page shows "is typing"; once he sends, it goes away.

import { composer, messageWithText, openRoom, signIn } from "../support/app.mjs";
import { expect } from "../support/expect.mjs";
import { roomWithBob } from "../support/setup.mjs";

export default async function typing(ctx) {
    const { roomName } = await roomWithBob(ctx, { name: "Typing" });
    ctx.step("both sign in and open the room");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);
    await Promise.all([openRoom(alice.page, roomName), openRoom(bob.page, roomName)]);

    const indicator = alice.page.getByText(/is typing/);
    ctx.step("nobody types yet");
    await expect(indicator, "no typing indicator before anyone types").toBeHidden({ timeout: 2_000 });

    ctx.step("bob types: alice sees 'is typing'");
    const box = composer(bob.page);
    await box.click();
    await box.pressSequentially("I am writing a long answer", { delay: 40 });
    await expect(indicator, "'is typing' on alice's page while bob types").toBeVisible({ timeout: 15_000 });
    ctx.result.indicator_text = (await indicator.first().textContent())?.trim();

    ctx.step("bob sends: the indicator goes away");
    await box.press("Enter");
    await expect(messageWithText(alice.page, "I am writing a long answer"), "bob's message on alice's page").toBeVisible({ timeout: 15_000 });
    await expect(indicator, "no typing indicator after bob sent").toBeHidden({ timeout: 15_000 });
}
