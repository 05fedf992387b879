// Scenarios run by matrix-js-sdk, a real third-party client, against the real server.
//
// Usage: node scenarios.mjs <scenario> <base_url>, with {"users": {name: {user_id,
// access_token, device_id}}} on stdin (the Python side registers the users).  Prints one
// JSON line: {ok, result, steps, failed_requests, pending_requests, requests}; the
// assertions live in tests/interop/test_matrix_js_sdk.py.  Crypto (the Rust crypto,
// matrix-sdk-crypto-wasm) is initialised only by the end-to-end encryption scenarios.

import {
    cryptoApi,
    rejection,
    runScenario,
    sdk,
    startAndWaitPrepared,
    startCrypto,
    untilAsync,
    untilClient,
    untilDecrypted,
    watch,
} from "./harness.mjs";

const { CryptoEvent } = cryptoApi;
const {
    ClientEvent,
    EventType,
    MatrixEventEvent,
    MsgType,
    ReceiptType,
    RelationType,
    RoomEvent,
    RoomMemberEvent,
    SyncState,
} = sdk;

/** alice alone: the client starts, syncs, and keeps syncing. */
async function startsAndSyncs(ctx) {
    const alice = ctx.client("alice");
    ctx.step("start the client and wait for the first sync (PREPARED)");
    const states = await startAndWaitPrepared(alice);
    // After PREPARED the SDK syncs once more without waiting (which moves it to SYNCING),
    // then long-polls; setAccountData resolves only once its change has come back
    // through that long poll.
    ctx.step("wake the long poll with account data and wait for SYNCING");
    const syncing = watch(alice, ClientEvent.Sync);
    const accountData = watch(alice, ClientEvent.AccountData);
    await alice.setAccountData("org.example.interop", { hello: "js-sdk" });
    await accountData.until((event) => event.getType() === "org.example.interop");
    await syncing.until((state) => state === SyncState.Syncing);
    return {
        sync_states: [...states],
        sync_state: alice.getSyncState(),
        initial_sync_complete: alice.isInitialSyncComplete(),
        user_id: alice.getUserId(),
        device_id: alice.getDeviceId(),
        account_data: alice.getAccountData("org.example.interop")?.getContent() ?? null,
    };
}

/** Wait until `client` has the room `roomId` and `userId`'s membership there is `membership`. */
function untilMembership(client, roomId, userId, membership) {
    return untilClient(client, () => client.getRoom(roomId)?.getMember(userId)?.membership === membership);
}

/** Wait until `client` sees the event `eventId` arrive in the live timeline of `roomId`. */
function untilTimelineEvent(timeline, roomId, eventId) {
    return timeline
        .until((event, room) => room?.roomId === roomId && event.getId() === eventId)
        .then(([event]) => event);
}

function describeMessage(event) {
    return {
        event_id: event.getId(),
        sender: event.getSender(),
        type: event.getType(),
        body: event.getContent().body ?? null,
    };
}

/** alice and bob: invite, join, message, edit, redaction, read receipt, typing. */
async function privateGroupConversation(ctx) {
    const alice = ctx.client("alice");
    const bob = ctx.client("bob");
    const aliceId = alice.getUserId();
    const bobId = bob.getUserId();
    ctx.step("start both clients");
    await Promise.all([startAndWaitPrepared(alice), startAndWaitPrepared(bob)]);
    const bobMemberships = watch(bob, RoomMemberEvent.Membership);
    const bobRooms = watch(bob, ClientEvent.Room);
    const bobTimeline = watch(bob, RoomEvent.Timeline);
    const aliceTimeline = watch(alice, RoomEvent.Timeline);

    ctx.step("alice creates a private room");
    const { room_id: roomId } = await alice.createRoom({ preset: sdk.Preset.PrivateChat, name: "Project X" });

    ctx.step("alice invites bob");
    await alice.invite(roomId, bobId);

    ctx.step("bob sees the invite through sync");
    const [, invited] = await bobMemberships.until(
        (_event, member) => member.roomId === roomId && member.userId === bobId && member.membership === "invite",
    );
    const [invitedRoom] = await bobRooms.until((room) => room.roomId === roomId);
    const invite = {
        membership: invited.membership,
        inviter: invited.events.member?.getSender() ?? null,
        my_membership: invitedRoom.getMyMembership(),
        room_name: invitedRoom.name,
    };

    ctx.step("bob joins");
    await bob.joinRoom(roomId);
    await untilMembership(bob, roomId, bobId, "join");

    ctx.step("alice's client sees bob's join");
    await untilMembership(alice, roomId, bobId, "join");
    const aliceRoom = alice.getRoom(roomId);

    ctx.step("alice sends a message; bob receives it");
    const { event_id: helloId } = await alice.sendTextMessage(roomId, "hello bob");
    const helloForBob = await untilTimelineEvent(bobTimeline, roomId, helloId);
    const received = describeMessage(helloForBob);

    ctx.step("alice edits the message; bob sees the replacement");
    const replaced = Promise.withResolvers();
    if (helloForBob.replacingEvent()) replaced.resolve();
    helloForBob.once(MatrixEventEvent.Replaced, () => replaced.resolve());
    const { event_id: editId } = await alice.sendMessage(roomId, {
        msgtype: MsgType.Text,
        body: "* hello bob, edited",
        "m.new_content": { msgtype: MsgType.Text, body: "hello bob, edited" },
        "m.relates_to": { rel_type: RelationType.Replace, event_id: helloId },
    });
    await replaced.promise;
    const edit = {
        edit_event_id: editId,
        replacing_event_id: helloForBob.replacingEventId() ?? null,
        displayed_body: helloForBob.getContent().body ?? null,
        original_body: helloForBob.getOriginalContent().body ?? null,
    };

    ctx.step("alice redacts another message; bob sees it redacted");
    const { event_id: doomedId } = await alice.sendTextMessage(roomId, "this one goes away");
    const doomedForBob = await untilTimelineEvent(bobTimeline, roomId, doomedId);
    const before = describeMessage(doomedForBob);
    const bobRedactions = watch(bob, RoomEvent.Redaction);
    const { event_id: redactionId } = await alice.redactEvent(roomId, doomedId, undefined, { reason: "oops" });
    await bobRedactions.until((event) => event.getAssociatedId() === doomedId);
    bobRedactions.stop();
    const redaction = {
        before,
        redaction_event_id: redactionId,
        is_redacted: doomedForBob.isRedacted(),
        content_after: doomedForBob.getContent(),
        redacted_because: doomedForBob.getUnsigned().redacted_because?.event_id ?? null,
    };

    ctx.step("bob sends a read receipt; alice sees it");
    const { event_id: readMeId } = await alice.sendTextMessage(roomId, "read me");
    const readMeForBob = await untilTimelineEvent(bobTimeline, roomId, readMeId);
    const readMeForAlice = await untilTimelineEvent(aliceTimeline, roomId, readMeId);
    const aliceReceipts = watch(alice, RoomEvent.Receipt);
    await bob.sendReadReceipt(readMeForBob);
    await aliceReceipts.until(
        (event, room) => room.roomId === roomId && bobId in (event.getContent()[readMeId]?.[ReceiptType.Read] ?? {}),
    );
    aliceReceipts.stop();
    const fromServer = aliceRoom.getReadReceiptForUserId(bobId, true, ReceiptType.Read);
    const receipt = {
        users_read_up_to: aliceRoom.getUsersReadUpTo(readMeForAlice).sort(),
        receipts_for_event: aliceRoom
            .getReceiptsForEvent(readMeForAlice)
            .map((r) => ({ user_id: r.userId, type: r.type }))
            .sort((a, b) => a.user_id.localeCompare(b.user_id)),
        bob_read_up_to: aliceRoom.getEventReadUpTo(bobId, true),
        bob_receipt_from_server: fromServer && { event_id: fromServer.eventId, has_ts: typeof fromServer.data.ts === "number" },
    };

    ctx.step("bob types; alice sees it");
    const aliceTyping = watch(alice, RoomMemberEvent.Typing);
    await bob.sendTyping(roomId, true, 30_000);
    const [, typingMember] = await aliceTyping.until(
        (_event, member) => member.roomId === roomId && member.userId === bobId && member.typing,
    );
    const typingStarted = { user_id: typingMember.userId, typing: typingMember.typing };
    await bob.sendTyping(roomId, false, 0);
    const [, stoppedMember] = await aliceTyping.until(
        (_event, member) => member.roomId === roomId && member.userId === bobId && !member.typing,
    );
    aliceTyping.stop();
    const typingStopped = { user_id: stoppedMember.userId, typing: stoppedMember.typing };

    return {
        alice: aliceId,
        bob: bobId,
        room_id: roomId,
        invite,
        bob_membership: bob.getRoom(roomId)?.getMyMembership() ?? null,
        alice_sees_bob_as: aliceRoom.getMember(bobId)?.membership ?? null,
        room_name_for_bob: bob.getRoom(roomId)?.name ?? null,
        join_rule_for_bob: bob.getRoom(roomId)?.getJoinRule() ?? null,
        hello_event_id: helloId,
        received,
        edit,
        redaction,
        read_me_event_id: readMeId,
        receipt,
        typing_started: typingStarted,
        typing_stopped: typingStopped,
    };
}

/** bob, muted by alice, is refused when he writes or renames the room. */
async function mutedMemberSendIsRefused(ctx) {
    const alice = ctx.client("alice");
    const bob = ctx.client("bob");
    const bobId = bob.getUserId();
    ctx.step("start both clients");
    await Promise.all([startAndWaitPrepared(alice), startAndWaitPrepared(bob)]);

    ctx.step("alice creates a public room");
    const { room_id: roomId } = await alice.createRoom({
        preset: sdk.Preset.PublicChat,
        visibility: sdk.Visibility.Public,
        name: "Town square",
    });

    ctx.step("bob joins");
    await bob.joinRoom(roomId);
    await untilMembership(bob, roomId, bobId, "join");
    const bobRoom = bob.getRoom(roomId);
    const bobCouldSend = bobRoom.currentState.maySendMessage(bobId);

    ctx.step("alice mutes bob; bob's client sees the new power levels");
    const powerLevelsForBob = watch(bob, RoomEvent.Timeline);
    const eventsDefault = bobRoom.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent()
        .events_default ?? 0;
    const { event_id: powerId } = await alice.setPowerLevel(roomId, bobId, eventsDefault - 1);
    await powerLevelsForBob.until((event) => event.getId() === powerId);
    powerLevelsForBob.stop();
    const bobPowerLevel = bobRoom.getMember(bobId)?.powerLevel ?? null;
    const bobMaySend = bobRoom.currentState.maySendMessage(bobId);

    ctx.step("bob tries to send a message");
    const send = await rejection(bob.sendTextMessage(roomId, "can anyone hear me?"));

    ctx.step("bob tries to rename the room");
    const rename = await rejection(bob.setRoomName(roomId, "Bob's square"));

    // Everything alice sends after the refusals reaches bob after anything bob's
    // attempts might have produced; so once bob has it, both views are complete.
    ctx.step("alice sends a message after the refusals; bob receives it");
    const bobTimeline = watch(bob, RoomEvent.Timeline);
    const { event_id: laterId } = await alice.sendTextMessage(roomId, "after the refusals");
    await bobTimeline.until((event) => event.getId() === laterId);
    bobTimeline.stop();
    const refusedEcho = bobRoom
        .getLiveTimeline()
        .getEvents()
        .find((event) => event.getContent().body === "can anyone hear me?");
    const aliceRoom = alice.getRoom(roomId);
    const liveEvents = aliceRoom.getLiveTimeline().getEvents();

    return {
        bob: bobId,
        events_default: eventsDefault,
        bob_could_send_before: bobCouldSend,
        bob_power_level: bobPowerLevel,
        bob_may_send_after: bobMaySend,
        send,
        refused_message_status: refusedEcho?.status ?? null,
        rename,
        room_name_for_alice: aliceRoom.name,
        room_name_for_bob: bobRoom.name,
        bob_events_seen_by_alice: liveEvents
            .filter((event) => event.getSender() === bobId && event.getType() !== EventType.RoomMember)
            .map(describeMessage),
    };
}

/** What a client made of an event it received encrypted. */
function describeDecrypted(event) {
    return {
        event_id: event.getId(),
        sender: event.getSender(),
        wire_type: event.getWireType(),
        algorithm: event.getWireContent().algorithm ?? null,
        is_encrypted: event.isEncrypted(),
        type: event.getType(),
        body: event.getClearContent()?.body ?? null,
        decryption_failure: event.isDecryptionFailure(),
    };
}

/** Wait until `client`'s crypto knows exactly the devices `deviceIds` of `userId` (keys downloaded). */
async function untilDevicesKnown(client, userId, deviceIds) {
    const wanted = [...deviceIds].sort().join(" ");
    let known = [];
    await untilAsync(client, [ClientEvent.Sync, CryptoEvent.DevicesUpdated], async () => {
        const devices = (await client.getCrypto().getUserDeviceInfo([userId])).get(userId) ?? new Map();
        known = [...devices.keys()].sort();
        return known.join(" ") === wanted;
    });
    return known;
}

/**
 * Send `body` from `sender` into `roomId` and wait until each of `receivers` (name ->
 * client, watching their timelines already) has decrypted it.
 */
async function sendAndDecrypt(sender, roomId, body, receivers) {
    const { event_id: eventId } = await sender.sendTextMessage(roomId, body);
    const seen = {};
    await Promise.all(
        Object.entries(receivers).map(async ([name, { timeline }]) => {
            const event = await untilTimelineEvent(timeline, roomId, eventId);
            seen[name] = describeDecrypted(await untilDecrypted(event, name));
        }),
    );
    return { event_id: eventId, seen };
}

/**
 * alice and bob, each with js-sdk's Rust crypto: an encrypted room, messages both ways,
 * then a new device of bob logs in, alice's client learns of it and shares the room key.
 */
async function encryptedConversationAndNewDevice(ctx) {
    const alice = ctx.client("alice");
    const bob = ctx.client("bob");
    const aliceId = alice.getUserId();
    const bobId = bob.getUserId();

    ctx.step("initialise both clients' Rust crypto");
    const [aliceCrypto, bobCrypto] = await Promise.all([startCrypto(alice, "alice"), startCrypto(bob, "bob")]);
    const crypto = {
        version: aliceCrypto.getVersion(),
        alice_blacklists_unverified: aliceCrypto.globalBlacklistUnverifiedDevices,
        bob_blacklists_unverified: bobCrypto.globalBlacklistUnverifiedDevices,
    };

    ctx.step("start both clients");
    await Promise.all([startAndWaitPrepared(alice), startAndWaitPrepared(bob)]);
    const bobMemberships = watch(bob, RoomMemberEvent.Membership);
    const aliceTimeline = watch(alice, RoomEvent.Timeline);
    const bobTimeline = watch(bob, RoomEvent.Timeline);

    ctx.step("alice creates an encrypted room and invites bob");
    const { room_id: roomId } = await alice.createRoom({
        preset: sdk.Preset.PrivateChat,
        name: "Secret plans",
        initial_state: [{ type: EventType.RoomEncryption, state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await alice.invite(roomId, bobId);

    ctx.step("bob sees the invite and joins");
    await bobMemberships.until(
        (_event, member) => member.roomId === roomId && member.userId === bobId && member.membership === "invite",
    );
    await bob.joinRoom(roomId);
    await untilMembership(bob, roomId, bobId, "join");

    ctx.step("alice's client sees bob's join");
    await untilMembership(alice, roomId, bobId, "join");
    const encryptionEnabled = {
        alice: await aliceCrypto.isEncryptionEnabledInRoom(roomId),
        bob: await bobCrypto.isEncryptionEnabledInRoom(roomId),
    };

    ctx.step("alice sends an encrypted message; bob decrypts it");
    const toBob = await sendAndDecrypt(alice, roomId, "the eagle lands at dawn", { bob: { timeline: bobTimeline } });

    ctx.step("bob replies encrypted; alice decrypts it");
    const toAlice = await sendAndDecrypt(bob, roomId, "copy that, dawn it is", { alice: { timeline: aliceTimeline } });

    ctx.step("alice's client knows bob's one device");
    const bobDevicesBefore = await untilDevicesKnown(alice, bobId, [bob.getDeviceId()]);

    ctx.step("bob logs in on a second device and starts its crypto");
    const bob2 = await ctx.login("bob2");
    const bob2Crypto = await startCrypto(bob2, "bob2");
    crypto.bob2_blacklists_unverified = bob2Crypto.globalBlacklistUnverifiedDevices;
    await startAndWaitPrepared(bob2);
    const bob2Timeline = watch(bob2, RoomEvent.Timeline);

    ctx.step("alice's client learns of bob's new device through sync");
    const bobDevicesAfter = await untilDevicesKnown(alice, bobId, [bob.getDeviceId(), bob2.getDeviceId()]);

    ctx.step("alice sends again; both of bob's devices decrypt it");
    const toBothDevices = await sendAndDecrypt(alice, roomId, "new phone, same plan", {
        bob: { timeline: bobTimeline },
        bob2: { timeline: bob2Timeline },
    });

    return {
        alice: aliceId,
        bob: bobId,
        alice_device: alice.getDeviceId(),
        bob_device: bob.getDeviceId(),
        bob2_user: bob2.getUserId(),
        bob2_device: bob2.getDeviceId(),
        room_id: roomId,
        crypto,
        encryption_enabled: encryptionEnabled,
        bob_devices_known_to_alice_before: bobDevicesBefore,
        bob_devices_known_to_alice_after: bobDevicesAfter,
        to_bob: toBob,
        to_alice: toAlice,
        to_both_devices: toBothDevices,
    };
}

/**
 * alice and bob with Rust crypto share an encrypted room (so alice's client tracks bob's
 * keys); bob sets up cross-signing, and alice's client sees his new identity, and his
 * device signed by it, once the change reaches her through sync.
 */
async function crossSigningIdentitySeen(ctx) {
    const alice = ctx.client("alice");
    const bob = ctx.client("bob");
    const bobId = bob.getUserId();
    const bobDevice = bob.getDeviceId();

    ctx.step("initialise both clients' Rust crypto and start them");
    const [aliceCrypto, bobCrypto] = await Promise.all([startCrypto(alice, "alice"), startCrypto(bob, "bob")]);
    await Promise.all([startAndWaitPrepared(alice), startAndWaitPrepared(bob)]);
    const bobMemberships = watch(bob, RoomMemberEvent.Membership);
    const bobTimeline = watch(bob, RoomEvent.Timeline);

    ctx.step("alice and bob share an encrypted room; alice's message reaches bob");
    const { room_id: roomId } = await alice.createRoom({
        preset: sdk.Preset.PrivateChat,
        initial_state: [{ type: EventType.RoomEncryption, state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await alice.invite(roomId, bobId);
    await bobMemberships.until((_event, member) => member.roomId === roomId && member.userId === bobId);
    await bob.joinRoom(roomId);
    await untilMembership(alice, roomId, bobId, "join");
    const hello = await sendAndDecrypt(alice, roomId, "before cross-signing", { bob: { timeline: bobTimeline } });
    const before = {
        alice_sees_bob_keys: await aliceCrypto.userHasCrossSigningKeys(bobId),
        bob_device_signed_by_owner: (await aliceCrypto.getDeviceVerificationStatus(bobId, bobDevice))?.signedByOwner ?? null,
    };

    ctx.step("bob sets up cross-signing (first upload: no interactive auth)");
    let authCalls = 0;
    await bobCrypto.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
            authCalls += 1;
            await makeRequest(null);
        },
    });
    const bobStatus = await bobCrypto.getCrossSigningStatus();

    ctx.step("alice's client sees bob's identity and his device signed by it");
    await untilAsync(alice, [ClientEvent.Sync, CryptoEvent.KeysChanged, CryptoEvent.DevicesUpdated], async () => {
        const status = await aliceCrypto.getDeviceVerificationStatus(bobId, bobDevice);
        return (await aliceCrypto.userHasCrossSigningKeys(bobId)) && status?.signedByOwner === true;
    });
    const bobIdentity = await aliceCrypto.getUserVerificationStatus(bobId);
    const bobDeviceStatus = await aliceCrypto.getDeviceVerificationStatus(bobId, bobDevice);

    return {
        room_id: roomId,
        hello_decrypted_by_bob: hello.seen.bob.body,
        before,
        auth_calls: authCalls,
        bob_cross_signing: {
            public_keys_on_device: bobStatus.publicKeysOnDevice,
            private_keys_cached: bobStatus.privateKeysCachedLocally,
            ready: await bobCrypto.isCrossSigningReady(),
            own_device_signed_by_owner: (await bobCrypto.getDeviceVerificationStatus(bobId, bobDevice))?.signedByOwner ?? null,
        },
        alice_sees: {
            bob_has_keys: await aliceCrypto.userHasCrossSigningKeys(bobId),
            bob_cross_signing_verified: bobIdentity.isCrossSigningVerified(),
            bob_device_signed_by_owner: bobDeviceStatus?.signedByOwner ?? null,
            bob_device_cross_signing_verified: bobDeviceStatus?.crossSigningVerified ?? null,
        },
    };
}

/**
 * alice on js-sdk (Rust crypto) and a matrix-nio client (tests/interop/nio_js_peer.py,
 * running meanwhile): alice invites nio into an encrypted room, writes first, then
 * decrypts nio's encrypted reply.
 */
async function jsSdkAndNioEncrypted(ctx) {
    const alice = ctx.client("alice");
    const nioId = ctx.users.nio.user_id;
    const nioDevice = ctx.users.nio.device_id;

    ctx.step("initialise alice's Rust crypto and start her client");
    const aliceCrypto = await startCrypto(alice, "alice");
    await startAndWaitPrepared(alice);
    const aliceTimeline = watch(alice, RoomEvent.Timeline);

    ctx.step("alice creates an encrypted room and invites nio");
    const { room_id: roomId } = await alice.createRoom({
        preset: sdk.Preset.PrivateChat,
        initial_state: [{ type: EventType.RoomEncryption, state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await alice.invite(roomId, nioId);

    ctx.step("alice's client sees nio join");
    await untilMembership(alice, roomId, nioId, "join");

    ctx.step("alice sends an encrypted message");
    const { event_id: helloId } = await alice.sendTextMessage(roomId, "hello nio, from js-sdk");
    const nioDevicesKnown = await untilDevicesKnown(alice, nioId, [nioDevice]);

    ctx.step("alice decrypts nio's encrypted reply");
    const [reply] = await aliceTimeline.until(
        (event, room) => room?.roomId === roomId && event.getSender() === nioId && event.getWireType() === "m.room.encrypted",
    );
    const decrypted = describeDecrypted(await untilDecrypted(reply, "alice"));

    return {
        room_id: roomId,
        hello_event_id: helloId,
        alice_blacklists_unverified: aliceCrypto.globalBlacklistUnverifiedDevices,
        nio_devices_known_to_alice: nioDevicesKnown,
        reply: decrypted,
    };
}

const SCENARIOS = {
    starts_and_syncs: startsAndSyncs,
    private_group_conversation: privateGroupConversation,
    muted_member_send_is_refused: mutedMemberSendIsRefused,
    encrypted_conversation_and_new_device: encryptedConversationAndNewDevice,
    cross_signing_identity_seen: crossSigningIdentitySeen,
    js_sdk_and_nio_encrypted: jsSdkAndNioEncrypted,
};

const name = process.argv[2];
if (!(name in SCENARIOS)) {
    process.stderr.write(`unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(SCENARIOS).join(", ")}\n`);
    process.exit(2);
}
await runScenario(SCENARIOS[name], { deadlineMs: Number(process.env.JS_SDK_SCENARIO_DEADLINE_MS ?? 60_000) });
