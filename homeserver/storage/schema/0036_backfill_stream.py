"""Owner: storage.events.  Backfilled positions and the graph's gaps.

``backfill_stream``: events backfill fills in (history older than what a room
holds) are stored with *negative* stream positions, ``-next(backfill_stream)``:
each later backfill goes further down, so /sync (which reads positions after its
token) never sees them as new, while their depth places them in history for
/messages and /context.  See docs/architecture.md, "History order".

``backward_extremities``: prev events that timeline events cite but that the room
holds only as outliers (a gap filled with another server's state, or the edge of
backfilled history): where history can be backfilled from, and events that must
not become forward extremities when they arrive later (something already cites
them).  A row goes when its event takes its place in the graph.
"""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.engine.create_sequence(txn, "backfill_stream")
    txn.execute(
        "CREATE TABLE backward_extremities ("
        " room_nid BIGINT NOT NULL,"
        " event_id TEXT NOT NULL,"
        " PRIMARY KEY (room_nid, event_id))"
    )
