// Issue 15: "device verification (emoji SAS) and key backup setup".  alice's first
// session writes in an encrypted room and sets up secure backup (Settings → Encryption
// → "Set up secure backup"), which shows a recovery key.  A second session of alice
// asks to be verified ("Verify this session with another device"); the first accepts
// the prompt; both show the same 7 emoji, both answer "They match", both end verified
// (and the server has the second session's key signed by alice's self-signing key).
// A third session restores the backup with the recovery key and reads the message.

import { messageWithText, openRoom, sendMessage, signIn } from "../support/app.mjs";
import { check, eventually, expect } from "../support/expect.mjs";
import { requireUsers, uniqueName } from "../support/setup.mjs";

export default async function verification(ctx) {
    requireUsers(ctx, "alice");
    const api = ctx.api("alice");
    const roomName = uniqueName("Secrets");
    const roomId = await api.createRoom({ name: roomName, encrypted: true });
    Object.assign(ctx.result, { room_id: roomId, room_name: roomName });

    ctx.step("the first session writes in the encrypted room");
    const first = (await ctx.device("alice-1")).page;
    await signIn(first, ctx.users.alice);
    await openRoom(first, roomName);
    const secret = "The launch code is 0000";
    await sendMessage(first, secret);
    await expect(messageWithText(first, secret), "the message in the first session").toBeVisible({ timeout: 30_000 });

    ctx.step("the first session sets up secure backup");
    await openEncryption(first);
    await first.getByRole("button", { name: "Set up secure backup", exact: true }).click();
    await first.getByLabel("Account password", { exact: true }).fill(ctx.users.alice.password);
    await first.getByRole("button", { name: "Continue", exact: true }).click();
    const keyBox = first.getByRole("status", { name: "Recovery key" }).or(first.getByLabel("Recovery key", { exact: true })).first();
    await expect(keyBox, "the recovery key").toBeVisible({ timeout: 30_000 });
    const recoveryKey = (await keyBox.textContent()).trim();
    ctx.result.recovery_key_groups = recoveryKey.split(/\s+/).length;
    check(/^E[Ss]/.test(recoveryKey) && recoveryKey.replace(/\s/g, "").length >= 48, `not a recovery key: ${JSON.stringify(recoveryKey)}`);
    await first.getByLabel("I have saved my recovery key").check();
    await first.getByRole("button", { name: "Set up backup", exact: true }).click();
    await expect(first.getByText("Secure backup is set up", { exact: false }), "secure backup set up").toBeVisible({ timeout: 60_000 });
    await first.getByRole("button", { name: "Done", exact: true }).click();
    await first.keyboard.press("Escape");
    ctx.result.backed_up_keys = await eventually(() => api.backedUpKeyCount(), "the room key in the server's key backup", { timeout: 30_000, interval: 500 });

    ctx.step("a second session asks to be verified");
    const second = (await ctx.device("alice-2")).page;
    await signIn(second, ctx.users.alice);
    await openEncryption(second);
    await second.getByRole("button", { name: "Verify this session with another device", exact: true }).click({ timeout: 30_000 });
    const secondPanel = verificationDialog(second);
    await expect(secondPanel, "the verification panel of the second session").toBeVisible({ timeout: 10_000 });

    ctx.step("the first session accepts the prompt");
    const prompt = first.getByRole("alert").filter({ hasText: "Verification request from" });
    await expect(prompt, "the verification prompt in the first session").toBeVisible({ timeout: 30_000 });
    await prompt.getByRole("button", { name: "Accept", exact: true }).click();
    const firstPanel = verificationDialog(first);
    await expect(firstPanel, "the verification panel of the first session").toBeVisible({ timeout: 10_000 });

    ctx.step("both compare the same 7 emoji");
    const compare = secondPanel.getByRole("button", { name: "Compare emoji", exact: true });
    await expect(compare, "Compare emoji in the second session").toBeEnabled({ timeout: 30_000 });
    await compare.click();
    const [emojiFirst, emojiSecond] = await Promise.all([shownEmoji(firstPanel, "first"), shownEmoji(secondPanel, "second")]);
    ctx.result.emoji = emojiSecond;
    check(emojiFirst.length === 7, `the first session shows ${emojiFirst.length} emoji: ${emojiFirst.join(", ")}`);
    check(JSON.stringify(emojiFirst) === JSON.stringify(emojiSecond), `the emoji differ: ${emojiFirst.join(", ")} / ${emojiSecond.join(", ")}`);

    ctx.step("both say they match; both end verified");
    await Promise.all([
        firstPanel.getByRole("button", { name: "They match", exact: true }).click(),
        secondPanel.getByRole("button", { name: "They match", exact: true }).click(),
    ]);
    await Promise.all([
        expect(firstPanel.getByText("is verified", { exact: false }), "verified, in the first session").toBeVisible({ timeout: 30_000 }),
        expect(secondPanel.getByText("is verified", { exact: false }), "verified, in the second session").toBeVisible({ timeout: 30_000 }),
    ]);
    for (const [name, page, panel] of [["first", first, firstPanel], ["second", second, secondPanel]]) {
        await page.keyboard.press("Escape");
        await expect(panel, `the ${name} session's verification panel closes`).toBeHidden({ timeout: 10_000 });
        await openEncryption(page);
        await expect(thisSessionVerified(page), `"This session: Verified" in the ${name} session's settings`).toBeVisible({ timeout: 30_000 });
        await page.keyboard.press("Escape");
    }
    ctx.result.cross_signed_devices = await eventually(async () => {
        const signed = await crossSignedDevices(api);
        return signed.length >= 2 ? signed : null;
    }, "both sessions' keys signed by alice's self-signing key on the server", { timeout: 15_000, interval: 500 });

    ctx.step("a third session restores the backup with the recovery key");
    const third = (await ctx.device("alice-3")).page;
    await signIn(third, ctx.users.alice);
    await openEncryption(third);
    await third.getByRole("button", { name: "Restore from backup", exact: true }).click({ timeout: 30_000 });
    await third.getByLabel("Recovery key", { exact: true }).fill(recoveryKey);
    await third.getByRole("button", { name: "Restore", exact: true }).click();
    const restored = third.getByText(/Restored \d+ of \d+ keys/);
    await expect(restored, "the restore's result").toBeVisible({ timeout: 60_000 });
    ctx.result.restored = (await restored.textContent()).trim();
    check(!/^Restored 0 of/.test(ctx.result.restored), ctx.result.restored);
    await third.getByRole("button", { name: "Done", exact: true }).click();
    await third.keyboard.press("Escape");

    ctx.step("the third session reads the old encrypted message");
    await openRoom(third, roomName);
    await expect(messageWithText(third, secret), "the message sent before this session existed").toBeVisible({ timeout: 30_000 });
}

/** Settings open at its Encryption section, once encryption has started. */
async function openEncryption(page) {
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const section = page.getByRole("region", { name: "Encryption" });
    await expect(section, "the Encryption section of Settings").toBeVisible({ timeout: 10_000 });
    await expect(section.getByText("Session ID", { exact: true }), "the encryption status (crypto started)").toBeVisible({ timeout: 30_000 });
    return section;
}

function verificationDialog(page) {
    return page.getByRole("dialog", { name: /^Verif/ });
}

function thisSessionVerified(page) {
    return page.getByRole("region", { name: "Encryption" }).getByText("Verified", { exact: true });
}

/** The emoji a verification panel shows (symbol and name of each), once it shows them. */
async function shownEmoji(panel, which) {
    const list = panel.getByRole("list", { name: "Emoji to compare" });
    await expect(list, `the emoji in the ${which} session`).toBeVisible({ timeout: 30_000 });
    return (await list.getByRole("listitem").allTextContents()).map((text) => text.trim());
}

/** alice's device ids whose key the server has signed by her self-signing key. */
async function crossSignedDevices(api) {
    const userId = api.user.user_id;
    const { json } = await api.call("POST", "/keys/query", { device_keys: { [userId]: [] } });
    const selfSigning = Object.keys(json.self_signing_keys?.[userId]?.keys ?? {});
    const devices = json.device_keys?.[userId] ?? {};
    return Object.entries(devices)
        .filter(([, keys]) => selfSigning.some((keyId) => keys.signatures?.[userId]?.[keyId]))
        .map(([deviceId]) => deviceId);
}
