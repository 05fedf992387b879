"""Owner: storage.devices.  The sequence that numbers access tokens."""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.engine.create_sequence(txn, "access_token_ids")
