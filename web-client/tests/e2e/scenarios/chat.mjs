// Issue 15: "two users in two browser contexts chat".  alice invites bob to an
// encrypted private room (new private rooms are encrypted by default in the app);
// bob joins with the invite's "Join" button; messages go both ways and show in the
// other's "Messages" log.

import { acceptInvite, messageWithText, openRoom, sendMessage, signIn } from "../support/app.mjs";
import { expect } from "../support/expect.mjs";
import { requireUsers, uniqueName } from "../support/setup.mjs";

export default async function chat(ctx) {
    requireUsers(ctx, "alice", "bob");
    ctx.step("both sign in");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);

    ctx.step("alice invites bob to a new encrypted room");
    const roomName = uniqueName("Chat");
    const roomId = await ctx.api("alice").createRoom({ name: roomName, invite: [ctx.users.bob], encrypted: true });
    Object.assign(ctx.result, { room_id: roomId, room_name: roomName, encrypted: true });

    ctx.step("bob joins with the invite's Join button");
    await acceptInvite(bob.page, roomName);
    await openRoom(bob.page, roomName);

    ctx.step("alice writes, bob reads");
    await openRoom(alice.page, roomName);
    const hello = "Hello Bob, this is Alice";
    await sendMessage(alice.page, hello);
    await expect(messageWithText(bob.page, hello), "alice's message in bob's timeline").toBeVisible({ timeout: 30_000 });

    ctx.step("bob answers, alice reads");
    const answer = "Hi Alice, Bob here";
    await sendMessage(bob.page, answer);
    await expect(messageWithText(alice.page, answer), "bob's answer in alice's timeline").toBeVisible({ timeout: 30_000 });
    ctx.result.messages = [hello, answer];
}
