// Issue 15: "an image and an audio message are sent and render".  alice attaches a PNG
// and a WAV made by the test ("Attach file"); bob's page shows the image (an <img>
// whose picture loaded) and an audio player (an <audio> on a blob: URL with a duration).

import { writeFile } from "node:fs/promises";
import path from "node:path";
import { messagesLog, openRoom, signIn } from "../support/app.mjs";
import { check, eventually } from "../support/expect.mjs";
import { makePng, makeWav } from "../support/media.mjs";
import { roomWithBob } from "../support/setup.mjs";

const IMAGE = { name: "e2e-picture.png", width: 160, height: 120 };
const AUDIO = { name: "e2e-tone.wav", seconds: 1.5 };

export default async function media(ctx) {
    const { roomId, roomName, bob: bobApi } = await roomWithBob(ctx, { name: "Media" });
    const imagePath = path.join(ctx.out, IMAGE.name);
    const audioPath = path.join(ctx.out, AUDIO.name);
    await writeFile(imagePath, makePng(IMAGE.width, IMAGE.height));
    await writeFile(audioPath, makeWav(AUDIO.seconds));

    ctx.step("both sign in and open the room");
    const alice = await ctx.device("alice");
    const bob = await ctx.device("bob");
    await Promise.all([signIn(alice.page, ctx.users.alice), signIn(bob.page, ctx.users.bob)]);
    await Promise.all([openRoom(alice.page, roomName), openRoom(bob.page, roomName)]);

    const attach = alice.page.getByLabel("Attach file", { exact: true });
    ctx.step("alice attaches an image");
    await attach.setInputFiles(imagePath);
    ctx.step("bob sees the image");
    const image = await eventually(() => loadedImage(bob.page), "a loaded <img> of the picture in bob's timeline", { timeout: 30_000 });
    ctx.result.image = image;
    check(Math.abs(image.naturalWidth / image.naturalHeight - IMAGE.width / IMAGE.height) < 0.05, `the image's aspect ratio changed: ${JSON.stringify(image)}`);

    ctx.step("alice attaches an audio file");
    await attach.setInputFiles(audioPath);
    ctx.step("bob's page can play it");
    const audio = await eventually(() => playableAudio(bob.page), "an <audio> with a blob: source and a duration in bob's timeline", { timeout: 30_000, interval: 500 });
    ctx.result.audio = audio;
    check(Math.abs(audio.duration - AUDIO.seconds) < 0.2, `the audio's duration is ${audio.duration}, not ${AUDIO.seconds}`);

    ctx.step("the server has an m.image and an m.audio from alice");
    const events = await bobApi.messages(roomId);
    ctx.result.msgtypes = events.map((e) => ({ sender: e.sender, msgtype: e.content.msgtype, body: e.content.body, mimetype: e.content.info?.mimetype ?? null }));
}

/** The first <img> in the timeline (other than a tick) whose picture loaded from a blob: URL. */
async function loadedImage(page) {
    return messagesLog(page).evaluate((log) => {
        for (const img of log.querySelectorAll("img")) {
            if (img.complete && img.naturalWidth > 0 && img.src.startsWith("blob:")) {
                return { alt: img.alt, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, src: img.src.slice(0, 5) };
            }
        }
        return null;
    });
}

/**
 * The first <audio> in the timeline with a blob: source and a known duration.  A
 * player with preload="none" has no duration until asked: then this asks it to load,
 * as pressing play would.
 */
async function playableAudio(page) {
    return messagesLog(page).evaluate((log) => {
        for (const audio of log.querySelectorAll("audio")) {
            const src = audio.currentSrc || audio.src;
            if (!src.startsWith("blob:")) continue;
            if (Number.isFinite(audio.duration) && audio.duration > 0) {
                return { duration: audio.duration, controls: audio.controls, src: src.slice(0, 5) };
            }
            if (audio.readyState === 0 && audio.networkState !== HTMLMediaElement.NETWORK_LOADING) {
                audio.preload = "metadata";
                audio.load();
            }
        }
        return null;
    });
}
