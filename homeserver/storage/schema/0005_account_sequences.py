"""Owners: storage.refresh_tokens and storage.users.  Sequences for refresh token ids
and for the numeric localparts given to users who register without a username."""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.engine.create_sequence(txn, "refresh_token_ids")
    txn.engine.create_sequence(txn, "generated_user_ids")
