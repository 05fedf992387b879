"""Owner: storage.federation_outbound.  What the federation sender must not forget.

``federation_outbound_positions``: per destination server, the events stream
position up to which every PDU meant for it was acknowledged (or given up after a
refusal).  Created at the first PDU queued for the destination, just below it.

``federation_outbound_rooms``: per (destination, room), the stream position of the
newest local event the destination should have, written by the sender's stream
consumer *before* its position moves.  A row above the destination's acknowledged
position is something it missed: catch-up sends it after an outage or a restart.
One row per pair, never one per event (Synapse's ``destination_rooms``).

``federation_outbound_edus``: EDUs that must not be lost (to-device messages, device
list and signing key updates): written before they are sent, deleted once a
transaction carrying them is acknowledged.

spec: server-server-api.md#transactions
"""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.execute(
        "CREATE TABLE federation_outbound_positions ("
        " destination TEXT NOT NULL PRIMARY KEY,"
        " acked_position BIGINT NOT NULL)"
    )
    txn.execute(
        "CREATE TABLE federation_outbound_rooms ("
        " destination TEXT NOT NULL,"
        " room_nid BIGINT NOT NULL,"
        " stream_ordering BIGINT NOT NULL,"
        " PRIMARY KEY (destination, room_nid))"
    )
    # Catch-up reads a destination's missed rooms oldest first.
    txn.execute(
        "CREATE INDEX federation_outbound_rooms_by_position"
        " ON federation_outbound_rooms (destination, stream_ordering)"
    )
    txn.execute(
        "CREATE TABLE federation_outbound_edus ("
        " edu_id BIGINT NOT NULL PRIMARY KEY,"
        " destination TEXT NOT NULL,"
        " edu_type TEXT NOT NULL,"
        " content TEXT NOT NULL,"
        " created_ts BIGINT NOT NULL)"
    )
    txn.execute(
        "CREATE INDEX federation_outbound_edus_by_destination"
        " ON federation_outbound_edus (destination, edu_id)"
    )
    txn.engine.create_sequence(txn, "federation_outbound_edu_ids")
