"""``/timestamp_to_event`` between our server and Synapse, both ways: a late joiner's
server finds an event of the history it lacks by asking the other server, then
fetches and stores it.  (Backfill with Synapse, both ways, is the interop scenario
``tests/federation/interop/test_conversation.py::test_history_is_backfilled_for_the_joiner``.)

spec: server-server-api.md#get_matrixfederationv1timestamp_to_eventroomid,
client-server-api/_index.md#get_matrixclientv1roomsroomidtimestamp_to_event
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.federation.history.scenarios import (
    event_ts,
    first_at,
    room_with_history,
    timestamp_to_event,
)
from tests.federation.interop.clients import ServerPair, room_path
from tests.support.federation import TestCA, database_section, federated_server
from tests.support.synapse_server import synapse_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-history-synapse")]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def with_synapse(
    request: pytest.FixtureRequest, ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    """Ours (on ``engine``) and a Synapse (on SQLite), federating."""
    engine: str = request.param
    folder = tmp_path_factory.mktemp(f"history-synapse-{engine}")
    with ExitStack() as stack:
        ours_db = stack.enter_context(database_section(engine, folder / "ours-db"))
        ours = stack.enter_context(federated_server(folder, ours_db, ca, name="ours"))
        other = stack.enter_context(synapse_server(folder, ca, name="synapse"))
        yield ServerPair(pairing="ours-synapse", engine=engine, ca=ca, ours=ours, other=other)


@pytest.mark.parametrize("created_on", ["ours", "synapse"])
def test_the_joiners_server_finds_an_old_event_by_time(
    with_synapse: ServerPair, created_on: str
) -> None:
    home, away = (
        (with_synapse.ours, with_synapse.other)
        if created_on == "ours"
        else (with_synapse.other, with_synapse.ours)
    )
    room = room_with_history(home, away, 6)
    ts = event_ts(room.creator, room.room_id, room.history[2][0])
    response = timestamp_to_event(room.joiner, room.room_id, ts, "f")
    assert response.status == 200, response.body
    found = response.json()
    assert (found["event_id"], found["origin_server_ts"]) == (first_at(room, ts), ts)
    event = room.joiner.call("GET", room_path(room.room_id, "event", found["event_id"]))
    assert event["origin_server_ts"] == ts
