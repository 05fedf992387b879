// An in-room verification request shows as a notice, not its fallback body.
import { afterEach, describe, expect, it } from "vitest";
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { createClient, MatrixEvent } from "matrix-js-sdk";
import { client } from "../../src/state/app";
import { MessageBody } from "../../src/ui/timeline/MessageBody";

afterEach(() => {
  client.value = null;
  document.body.innerHTML = "";
});

describe("MessageBody of m.key.verification.request", () => {
  it("says who wants to verify whom instead of the fallback text", () => {
    client.value = createClient({ baseUrl: "http://127.0.0.1:1", userId: "@bob:hs" });
    const event = new MatrixEvent({
      type: "m.room.message",
      event_id: "$req",
      room_id: "!dm:hs",
      sender: "@alice:hs",
      origin_server_ts: 1,
      content: {
        msgtype: "m.key.verification.request",
        body: "Alice is requesting to verify your key, but your client does not support in-chat key verification.",
        to: "@bob:hs",
        from_device: "DEV",
        methods: ["m.sas.v1"],
      },
    });
    const container = document.createElement("div");
    document.body.append(container);
    act(() => render(h(MessageBody, { event, senderName: "Alice" }), container));
    expect(container.textContent).toBe("Alice wants to verify you");
    expect(container.textContent).not.toContain("does not support");
  });
});
