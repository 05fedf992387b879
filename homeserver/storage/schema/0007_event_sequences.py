"""Owner: storage.events and storage.state.  The sequences behind their ids.

``events_stream`` orders events as clients see them (the events stream position).
"""

from homeserver.storage.transaction import Transaction

SEQUENCES = ("room_nids", "event_nids", "events_stream", "state_key_nids", "state_group_ids")


def run(txn: Transaction) -> None:
    for sequence in SEQUENCES:
        txn.engine.create_sequence(txn, sequence)
