// Issue 15: "new private rooms and DMs encrypted by default".  alice makes a private
// room through the "New room" dialog and a DM with bob through "Start chat", leaving
// every option at its default; the server's state of both then holds m.room.encryption.
// (The test's server does not encrypt new rooms itself, so only the app can have.)

import { openRoom, roomEntry, signIn } from "../support/app.mjs";
import { check, eventually, expect } from "../support/expect.mjs";
import { requireUsers, uniqueName } from "../support/setup.mjs";

export default async function encryptionDefaults(ctx) {
    requireUsers(ctx, "alice", "bob");
    const api = ctx.api("alice");
    const alice = await ctx.device("alice");
    ctx.step("alice signs in");
    await signIn(alice.page, ctx.users.alice);
    const page = alice.page;

    ctx.step("a private room through New room, defaults only");
    const roomName = uniqueName("Private");
    await page.getByRole("button", { name: "New room", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "New room" });
    await expect(dialog, "the New room dialog").toBeVisible({ timeout: 10_000 });
    await dialog.getByLabel("Name", { exact: true }).fill(roomName);
    await dialog.getByRole("button", { name: "Create room", exact: true }).click();
    await expect(dialog, "the New room dialog closes").toBeHidden({ timeout: 30_000 });
    await openRoom(page, roomName);
    const roomId = await eventually(() => api.roomIdByName(roomName), `the room ${roomName} among alice's joined rooms`, { timeout: 15_000 });
    ctx.result.room_id = roomId;
    ctx.result.room_encryption = await api.stateContent(roomId, "m.room.encryption");
    check(ctx.result.room_encryption?.algorithm === "m.megolm.v1.aes-sha2", `the new private room's m.room.encryption: ${JSON.stringify(ctx.result.room_encryption)}`);

    ctx.step("a DM with bob through Start chat, defaults only");
    const bobId = ctx.users.bob.user_id;
    await page.getByRole("button", { name: "Start chat", exact: true }).click();
    const start = page.getByRole("dialog", { name: "Start chat" });
    await expect(start, "the Start chat dialog").toBeVisible({ timeout: 10_000 });
    // A full user ID is offered even when the directory does not list the person.
    await start.getByLabel("Find people", { exact: true }).fill(bobId);
    const message = start.getByRole("button", { name: /^Message / }).first();
    await expect(message, "a Message button for bob").toBeVisible({ timeout: 15_000 });
    await message.click();
    await expect(start, "the Start chat dialog closes").toBeHidden({ timeout: 30_000 });
    const dmId = await eventually(async () => (await api.directRooms())[bobId]?.[0], "the DM with bob in alice's m.direct", { timeout: 15_000 });
    ctx.result.dm_id = dmId;
    ctx.result.dm_encryption = await api.stateContent(dmId, "m.room.encryption");
    check(ctx.result.dm_encryption?.algorithm === "m.megolm.v1.aes-sha2", `the new DM's m.room.encryption: ${JSON.stringify(ctx.result.dm_encryption)}`);
    await expect(roomEntry(page, ctx.users.bob.localpart), "the DM in the room list").toBeVisible({ timeout: 15_000 });
}
