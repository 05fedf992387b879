// Issue 15: "reloading while offline shows the app and its history".  The service
// worker serves the app shell, IndexedDB the rooms and recent messages.

import { messageWithText, messagesLog, openRoom, roomsNav, serviceWorkerReady, signIn } from "../support/app.mjs";
import { expect } from "../support/expect.mjs";
import { roomWithBob } from "../support/setup.mjs";

export default async function offlineReload(ctx) {
    const { roomId, roomName, bob: bobApi } = await roomWithBob(ctx, { name: "History" });
    const history = ["First line of history", "Second line of history", "Third line of history"];
    for (const line of history) await bobApi.sendText(roomId, line);

    ctx.step("alice signs in and reads the room");
    const alice = await ctx.device("alice");
    await signIn(alice.page, ctx.users.alice);
    await openRoom(alice.page, roomName);
    for (const line of history) await expect(messageWithText(alice.page, line), `"${line}" online`).toBeVisible();

    ctx.step("the service worker is active");
    await serviceWorkerReady(alice.page);
    // The sync store writes to IndexedDB after a sync; give it a moment after the last one.
    await alice.page.waitForTimeout(3_000);

    ctx.step("offline reload shows the app");
    ctx.watcher.setOffline(alice.context, true);
    await alice.context.setOffline(true);
    await alice.page.reload();
    await expect(roomsNav(alice.page), "the Rooms navigation after an offline reload").toBeVisible({ timeout: 30_000 });
    await expect(alice.page.getByText(/Offline/).first(), "the Offline status after an offline reload").toBeVisible({ timeout: 15_000 });

    ctx.step("and the room's history");
    if (!(await messagesLog(alice.page).isVisible())) await openRoom(alice.page, roomName);
    for (const line of history) await expect(messageWithText(alice.page, line), `"${line}" offline`).toBeVisible({ timeout: 15_000 });
    ctx.result.history_shown_offline = history;
}
