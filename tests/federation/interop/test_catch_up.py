"""A server that was down catches up on the messages it missed.

Each test stops one server (SIGTERM, as an operator would), has the other server's
user send messages meanwhile, starts it again on the same ports and database, and
waits until its user sees them all.

spec: server-server-api.md#transactions (the sender retries),
server-server-api.md#backfilling-and-retrieving-missing-events (gaps are filled)
"""

from __future__ import annotations

import pytest

from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    acting,
    send_text,
    start_conversation,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-catch-up")]


@pytest.fixture(scope="module")
def conversation(servers: ServerPair) -> Conversation:
    return start_conversation(servers.ours, servers.other)


@pytest.mark.parametrize("down", ["other", "ours"])
def test_a_server_that_was_down_gets_the_messages_it_missed(
    servers: ServerPair, conversation: Conversation, down: str
) -> None:
    # ``conversation`` was created on ours: the creator is ours' user.
    sender, absent_sync = acting(conversation, "creator" if down == "other" else "joiner")
    absent_server = servers.other if down == "other" else servers.ours
    assert absent_sync.user.server is absent_server
    # The absent user has seen everything so far: what comes after is what it missed.
    absent_sync.catch_up()

    absent_server.process.stop()
    try:
        missed = [
            send_text(sender, conversation.room_id, f"while you were away {n}") for n in range(3)
        ]
    finally:
        absent_server.process.start()

    if down == "ours":
        # Synapse retries a server it gave up on within a minute, or as soon as that
        # server contacts it: the returning server's user speaks first.
        send_text(absent_sync.user, conversation.room_id, "I am back")
    absent_sync.wait_for_events(conversation.room_id, missed)
