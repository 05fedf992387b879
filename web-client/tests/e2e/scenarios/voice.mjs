// Issue 15: "a recorded voice message".  Chromium runs with a fake microphone
// (--use-fake-device-for-media-stream, --use-fake-ui-for-media-stream: a tone, the
// permission granted); alice records with "Record voice message", stops with "Stop
// recording" and sends with "Send voice message".  The server gets an m.audio marked
// as voice (MSC3245), and bob's page shows a playable <audio> for it.

import { messagesLog, openRoom, signIn } from "../support/app.mjs";
import { check, eventually, expect } from "../support/expect.mjs";
import { roomWithBob } from "../support/setup.mjs";

/** Long enough for a few MediaRecorder chunks (the app asks for one every 250 ms). */
const RECORD_AT_LEAST_MS = 1_500;

export default async function voice(ctx) {
    const { roomId, roomName, bob: bobApi } = await roomWithBob(ctx, { name: "Voice" });
    ctx.step("both sign in and open the room");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);
    await Promise.all([openRoom(alice.page, roomName), openRoom(bob.page, roomName)]);

    ctx.step("alice records a voice message");
    const page = alice.page;
    await page.getByRole("button", { name: "Record voice message", exact: true }).click();
    const stop = page.getByRole("button", { name: "Stop recording", exact: true });
    await expect(stop, "the Stop recording button while recording").toBeVisible({ timeout: 10_000 });
    const startedAt = Date.now();
    // The recording needs some length: wait on the page's own clock passing 0:01.
    await eventually(async () => {
        const shown = await page.getByRole("timer", { name: "Recording time" }).textContent();
        return Date.now() - startedAt >= RECORD_AT_LEAST_MS && !/^0?0:00$/.test(shown.trim()) ? shown : null;
    }, "the recording time passing 0:00", { timeout: 15_000, interval: 100 });
    await stop.click();

    ctx.step("alice sends it");
    const send = page.getByRole("button", { name: "Send voice message", exact: true });
    await expect(send, "the Send voice message button").toBeEnabled({ timeout: 10_000 });
    await send.click();
    await expect(send, "the recorder closes after sending").toBeHidden({ timeout: 10_000 });

    ctx.step("the server has an m.audio marked as voice");
    const event = await eventually(async () => (await bobApi.messages(roomId)).find((e) => e.content.msgtype === "m.audio"), "an m.audio from alice on the server", { timeout: 30_000, interval: 500 });
    ctx.result.content = event.content;
    ctx.result.sender = event.sender;
    check(event.sender === ctx.users.alice.user_id, `the m.audio is from ${event.sender}`);
    check(event.content["org.matrix.msc3245.voice"] !== undefined, `no org.matrix.msc3245.voice in ${JSON.stringify(event.content)}`);
    check(/^audio\//.test(event.content.info?.mimetype ?? ""), `the voice message's mimetype: ${event.content.info?.mimetype}`);
    check((event.content.info?.size ?? 0) > 0, `the voice message's size: ${event.content.info?.size}`);

    ctx.step("bob's page can play it");
    ctx.result.audio = await eventually(() => playableAudio(bob.page), "a playable <audio> in bob's timeline", { timeout: 30_000, interval: 500 });
}

/**
 * The first <audio> in the timeline on a blob: URL whose metadata loaded without an
 * error.  A recording in WebM often has no duration in its header (Infinity until played
 * through), so any positive duration counts.  A player with preload="none" is asked to
 * load, as pressing play would.
 */
async function playableAudio(page) {
    return messagesLog(page).evaluate((log) => {
        for (const audio of log.querySelectorAll("audio")) {
            const src = audio.currentSrc || audio.src;
            if (!src.startsWith("blob:")) continue;
            if (audio.error) throw new Error(`the <audio> failed: code ${audio.error.code} ${audio.error.message}`);
            if (audio.readyState >= HTMLMediaElement.HAVE_METADATA && audio.duration > 0) {
                return { duration: Number.isFinite(audio.duration) ? audio.duration : "Infinity", controls: audio.controls, readyState: audio.readyState };
            }
            if (audio.readyState === 0 && audio.networkState !== HTMLMediaElement.NETWORK_LOADING) {
                audio.preload = "metadata";
                audio.load();
            }
        }
        return null;
    });
}
