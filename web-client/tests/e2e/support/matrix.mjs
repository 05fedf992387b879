// The Client-Server API from the test's side (fetch), for setting up rooms and for
// checking what really reached the server, independently of the UI under test.

const CLIENT = "/_matrix/client/v3";

export class Api {
    constructor(baseUrl, user) {
        this.baseUrl = baseUrl.replace(/\/$/, "");
        this.user = user;
    }

    async call(method, path, body, { expect = [200] } = {}) {
        const response = await fetch(this.baseUrl + CLIENT + path, {
            method,
            headers: { Authorization: `Bearer ${this.user.access_token}`, "Content-Type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        if (!expect.includes(response.status)) {
            throw new Error(`${method} ${path} -> ${response.status}: ${text.slice(0, 300)}`);
        }
        return { status: response.status, json: text ? JSON.parse(text) : {} };
    }

    /** A private room (invite only), unencrypted unless `encrypted`, with `invite` invited. */
    async createRoom({ name, invite = [], encrypted = false, preset = "private_chat" }) {
        const initialState = encrypted
            ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }]
            : [];
        const { json } = await this.call("POST", "/createRoom", {
            name,
            preset,
            invite: invite.map((u) => u.user_id),
            initial_state: initialState,
        });
        return json.room_id;
    }

    async join(roomId) {
        await this.call("POST", `/join/${encodeURIComponent(roomId)}`, {});
    }

    async sendText(roomId, body) {
        const txn = `e2e-${Date.now()}-${Math.random().toString(36).slice(2)}`;
        const { json } = await this.call("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, { msgtype: "m.text", body });
        return json.event_id;
    }

    /** The room's m.room.message events, oldest first (the newest `limit`). */
    async messages(roomId, limit = 100) {
        const { json } = await this.call("GET", `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=${limit}`);
        return json.chunk.filter((e) => e.type === "m.room.message").reverse();
    }

    /** The ids of the rooms the user has joined. */
    async joinedRooms() {
        const { json } = await this.call("GET", "/joined_rooms");
        return json.joined_rooms;
    }

    /** A state event's content, or null when the room has no such state. */
    async stateContent(roomId, type, stateKey = "") {
        const { status, json } = await this.call("GET", `/rooms/${encodeURIComponent(roomId)}/state/${encodeURIComponent(type)}/${encodeURIComponent(stateKey)}`, undefined, { expect: [200, 404] });
        return status === 200 ? json : null;
    }

    /** The id of the joined room named `name` (its m.room.name), or null. */
    async roomIdByName(name) {
        for (const roomId of await this.joinedRooms()) {
            if ((await this.stateContent(roomId, "m.room.name"))?.name === name) return roomId;
        }
        return null;
    }

    /** The user's m.direct account data ({userId: [roomId, ...]}), or {} when unset. */
    async directRooms() {
        const { status, json } = await this.call("GET", `/user/${encodeURIComponent(this.user.user_id)}/account_data/m.direct`, undefined, { expect: [200, 404] });
        return status === 200 ? json : {};
    }

    /** How many room keys the server's current key backup holds (0 without a backup). */
    async backedUpKeyCount() {
        const version = await this.call("GET", "/room_keys/version", undefined, { expect: [200, 404] });
        if (version.status !== 200) return 0;
        return version.json.count ?? 0;
    }

    /** A user-interactive auth session id (DELETE /devices/{id} without auth answers 401 with one). */
    async uiaSession() {
        const { json } = await this.call("DELETE", `/devices/${encodeURIComponent(this.user.device_id)}`, {}, { expect: [401] });
        return json.session;
    }
}
