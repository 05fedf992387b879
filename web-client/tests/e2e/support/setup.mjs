// Setting the stage through the API (not the subject of the scenarios that use it).

import { check } from "./expect.mjs";

export function uniqueName(prefix) {
    return `${prefix} ${Math.random().toString(36).slice(2, 7)}`;
}

/** A private room made by alice through the API, with bob joined through the API too. */
export async function roomWithBob(ctx, { name, encrypted = false } = {}) {
    const alice = ctx.api("alice");
    const bob = ctx.api("bob");
    const roomName = name ?? uniqueName("Room");
    const roomId = await alice.createRoom({ name: roomName, invite: [ctx.users.bob], encrypted });
    await bob.join(roomId);
    ctx.result.room_id = roomId;
    ctx.result.room_name = roomName;
    return { roomId, roomName, alice, bob };
}

export function requireUsers(ctx, ...names) {
    for (const name of names) check(ctx.users[name]?.access_token, `users.json has no ${name} (with access_token, localpart, password)`);
}
