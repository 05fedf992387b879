// The room list's roving focus, and verifying members (where the request goes, what shows);
// against matrix-js-sdk's own Room model (no network: events are added directly).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { h, render } from "preact";
import { createClient, MatrixEvent, Room, type MatrixClient } from "matrix-js-sdk";
import { client, selectedRoomId } from "../../src/state/app";
import { RoomList } from "../../src/ui/rooms/RoomList";
import { UserVerificationStatus } from "matrix-js-sdk/lib/crypto-api/index";
import { cryptoStartup } from "../../src/matrix/client";
import { cryptoStatus } from "../../src/crypto/status";
import { MemberVerification, verificationRoomFor } from "../../src/ui/rooms/settings/MemberVerification";

const ME = "@me:hs";
const BOB = "@bob:hs";
let ts = 1000;

function event(roomId: string, type: string, sender: string, content: Record<string, unknown>, stateKey?: string) {
  return new MatrixEvent({ type, sender, content, state_key: stateKey, event_id: `$${ts}`, origin_server_ts: ts++, room_id: roomId });
}

async function makeRoom(matrix: MatrixClient, roomId: string, name: string, extra: MatrixEvent[] = []) {
  const room = new Room(roomId, matrix, ME);
  await room.addLiveEvents(
    [
      event(roomId, "m.room.create", ME, { room_version: "12" }, ""),
      event(roomId, "m.room.member", ME, { membership: "join", displayname: "Me" }, ME),
      event(roomId, "m.room.name", ME, { name }, ""),
      ...extra,
    ],
    { addToState: true },
  );
  room.updateMyMembership("join");
  return room;
}

async function clientWithRooms(names: string[]) {
  const matrix = createClient({ baseUrl: "http://localhost", userId: ME });
  const rooms = await Promise.all(names.map((name, i) => makeRoom(matrix, `!r${i}:hs`, name)));
  matrix.getRooms = () => rooms;
  matrix.getRoom = (id) => rooms.find((room) => room.roomId === id) ?? null;
  return { matrix, rooms };
}

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.append(root);
  selectedRoomId.value = null;
});
afterEach(() => {
  render(null, root);
  root.remove();
  client.value = null;
});

const roomButtons = () => [...root.querySelectorAll<HTMLButtonElement>("button[data-room-id]")];
const press = (key: string) =>
  (document.activeElement as HTMLElement).dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("room list keyboard", () => {
  it("is one Tab stop, moved with the arrow keys, Home and End", async () => {
    const { matrix } = await clientWithRooms(["Alpha", "Beta", "Gamma"]);
    client.value = matrix;
    render(h(RoomList, {}), root);
    const buttons = roomButtons();
    expect(buttons).toHaveLength(3);
    expect(buttons.map((b) => b.tabIndex).filter((t) => t === 0)).toHaveLength(1);

    buttons.find((b) => b.tabIndex === 0)!.focus();
    press("End");
    expect(document.activeElement).toBe(roomButtons()[2]);
    press("ArrowDown"); // stays on the last one
    expect(document.activeElement).toBe(roomButtons()[2]);
    press("Home");
    expect(document.activeElement).toBe(roomButtons()[0]);
    press("ArrowDown");
    expect(document.activeElement).toBe(roomButtons()[1]);
    press("ArrowUp");
    expect(document.activeElement).toBe(roomButtons()[0]);

    // The Tab stop follows focus, so Tab comes back to where one left.
    press("End");
    await flush();
    expect(roomButtons().map((b) => b.tabIndex)).toEqual([-1, -1, 0]);
  });

  it("opens a room with its button and goes from the filter to the first room with Down", async () => {
    const { matrix } = await clientWithRooms(["Alpha", "Beta"]);
    client.value = matrix;
    render(h(RoomList, {}), root);
    const filter = root.querySelector<HTMLInputElement>("input[type=search]")!;
    filter.focus();
    press("ArrowDown");
    const first = roomButtons()[0]!;
    expect(document.activeElement).toBe(first);
    first.click();
    expect(selectedRoomId.value).toBe(first.dataset.roomId);
  });

  it("makes the open room the Tab stop", async () => {
    const { matrix } = await clientWithRooms(["Alpha", "Beta", "Gamma"]);
    client.value = matrix;
    render(h(RoomList, {}), root);
    const target = roomButtons()[1]!.dataset.roomId!;
    selectedRoomId.value = target;
    await flush();
    expect(roomButtons().find((b) => b.tabIndex === 0)?.dataset.roomId).toBe(target);
  });
});

describe("verificationRoomFor", () => {
  const bobJoined = (roomId: string) => event(roomId, "m.room.member", BOB, { membership: "join", displayname: "Bob" }, BOB);
  const encrypted = (roomId: string) => event(roomId, "m.room.encryption", ME, { algorithm: "m.megolm.v1.aes-sha2" }, "");

  async function setUp(direct: string[]) {
    const matrix = createClient({ baseUrl: "http://localhost", userId: ME });
    const group = await makeRoom(matrix, "!group:hs", "Team", [bobJoined("!group:hs"), encrypted("!group:hs")]);
    const dm = await makeRoom(matrix, "!dm:hs", "Bob", [bobJoined("!dm:hs"), encrypted("!dm:hs")]);
    const rooms = [group, dm];
    matrix.getRoom = (id) => rooms.find((room) => room.roomId === id) ?? null;
    matrix.getAccountData = ((type: string) =>
      type === "m.direct" ? new MatrixEvent({ type, content: { [BOB]: direct } }) : undefined) as MatrixClient["getAccountData"];
    return { matrix, group, dm };
  }

  it("uses the DM with the person rather than a group room", async () => {
    const { matrix, group } = await setUp(["!dm:hs"]);
    expect(verificationRoomFor(matrix, group, BOB)).toBe("!dm:hs");
  });

  it("uses the open room when it is the DM", async () => {
    const { matrix, dm } = await setUp(["!dm:hs"]);
    expect(verificationRoomFor(matrix, dm, BOB)).toBe("!dm:hs");
  });

  it("falls back to the shared room without a DM", async () => {
    const { matrix, group } = await setUp([]);
    expect(verificationRoomFor(matrix, group, BOB)).toBe("!group:hs");
  });
});

describe("MemberVerification", () => {
  const encryptedRoom = async (matrix: MatrixClient) =>
    makeRoom(matrix, "!dm:hs", "Bob", [
      event("!dm:hs", "m.room.member", BOB, { membership: "join", displayname: "Bob" }, BOB),
      event("!dm:hs", "m.room.encryption", ME, { algorithm: "m.megolm.v1.aes-sha2" }, ""),
    ]);

  function withTrust(matrix: MatrixClient, status: { verified: boolean; known: boolean }) {
    const trust = new UserVerificationStatus(status.verified, status.verified, status.known);
    matrix.getCrypto = (() => ({ getUserVerificationStatus: async () => trust })) as unknown as MatrixClient["getCrypto"];
  }

  async function show(status: { verified: boolean; known: boolean }, ownCrossSigning = true, extra: Record<string, unknown> = {}) {
    const matrix = createClient({ baseUrl: "http://localhost", userId: ME });
    const room = await encryptedRoom(matrix);
    withTrust(matrix, status);
    client.value = matrix;
    cryptoStartup.value = { state: "ready" };
    cryptoStatus.value = { deviceId: "D", ed25519: "k", crossSigningReady: ownCrossSigning, deviceVerified: true, secretStorageReady: true, backupOnServer: null, activeBackup: null };
    render(h(MemberVerification, { room, userId: BOB, name: "Bob", ...extra }), root);
    await flush();
    await flush();
  }
  const verifyButton = () => root.querySelector<HTMLButtonElement>("button[aria-label='Verify Bob']");

  it("says Verified for a cross-signed member", async () => {
    await show({ verified: true, known: true });
    expect(root.textContent).toContain("Verified");
    expect(verifyButton()).toBeNull();
  });

  it("offers Verify for a known, unverified member", async () => {
    await show({ verified: false, known: true });
    expect(verifyButton()?.disabled).toBe(false);
    expect(root.textContent).not.toContain("Verified");
  });

  it("disables Verify, with the reason, until both sides have an identity", async () => {
    await show({ verified: false, known: false });
    expect(verifyButton()?.disabled).toBe(true);
    expect(verifyButton()?.title).toContain("has not set up");
    render(null, root);
    await show({ verified: false, known: true }, false);
    expect(verifyButton()?.title).toContain("Set up secure backup");
  });

  it("shows nothing in the header while Verify cannot be used", async () => {
    await show({ verified: false, known: false }, true, { compact: true });
    expect(root.innerHTML).toBe("");
  });

  it("shows nothing while encryption is not running", async () => {
    await show({ verified: true, known: true });
    cryptoStartup.value = { state: "unavailable", error: "no wasm" };
    await flush();
    expect(root.innerHTML).toBe("");
  });
});
