"""Owner: storage.pushers.  Pushers (``POST /pushers/set``), the queue of notifying
events waiting to reach each of them, and the server's Web Push (VAPID) key.

``pushers``: one row per (user, app_id, pushkey); ``data`` is the client's JSON as
given.  ``failures``/``failing_since``/``next_attempt_ts`` are the delivery state: a
pusher whose gateway is down is retried with backoff from ``next_attempt_ts``, and
what has been failing for a day is dropped (pushers/engine.py).

``pusher_queue``: written by the pusher engine, from the events stream, before its
stream position moves; a row leaves once its delivery is answered.  So a notification
survives a restart, and a replayed batch inserts nothing new (the primary key).

``webpush_vapid_key``: the one key pair this server signs Web Push requests with
(RFC 8292), made at first start, kept here so every process signs with it.

spec: client-server-api/modules/push.md#pushers, push-gateway-api.md
"""

from homeserver.storage.transaction import Transaction


def run(txn: Transaction) -> None:
    txn.execute(
        "CREATE TABLE pushers ("
        " id BIGINT NOT NULL PRIMARY KEY,"
        " user_id TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " app_id TEXT NOT NULL,"
        " pushkey TEXT NOT NULL,"
        " app_display_name TEXT NOT NULL,"
        " device_display_name TEXT NOT NULL,"
        " profile_tag TEXT,"
        " lang TEXT NOT NULL,"
        " data TEXT NOT NULL,"
        " device_id TEXT,"
        " created_ts BIGINT NOT NULL,"
        " failures INTEGER NOT NULL DEFAULT 0,"
        " failing_since BIGINT,"
        " next_attempt_ts BIGINT,"
        " UNIQUE (user_id, app_id, pushkey))"
    )
    # ``append: false`` and gateway rejections find pushers by (app_id, pushkey).
    txn.execute("CREATE INDEX pushers_by_pushkey ON pushers (app_id, pushkey)")
    txn.execute(
        "CREATE TABLE pusher_queue ("
        " pusher_id BIGINT NOT NULL,"
        " position BIGINT NOT NULL,"
        " event_id TEXT NOT NULL,"
        " room_id TEXT NOT NULL,"
        " actions TEXT NOT NULL,"
        " queued_ts BIGINT NOT NULL,"
        " PRIMARY KEY (pusher_id, position))"
    )
    txn.execute(
        "CREATE TABLE webpush_vapid_key ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " private_key_pem TEXT NOT NULL,"
        " created_ts BIGINT NOT NULL)"
    )
    txn.engine.create_sequence(txn, "pusher_ids")
