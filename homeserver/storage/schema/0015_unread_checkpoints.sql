-- Owner: storage.unread.
--
-- Unread notification counts as of a stream position, per (user, room, thread),
-- written only when that user's /sync asks for counts (never per member per
-- message), so the next computation reads only the events after the checkpoint.
--
-- Every row of a room carries the room-wide fields: ``base_position`` (the read mark
-- counted from: the newest of the user's join and unthreaded receipts),
-- ``stream_position`` (the events up to it are counted) and ``rules_hash`` (the
-- user's push rules they were evaluated with).  Per thread (``main`` for the main
-- timeline, else the thread root's event ID): the threaded receipt position seen
-- (0 if none) and the counts of that thread's events after
-- max(base_position, receipt_position), up to stream_position.
-- spec: client-server-api/_index.md#receiving-notifications
CREATE TABLE unread_checkpoints (
    user_id TEXT NOT NULL,
    room_nid BIGINT NOT NULL,
    thread_id TEXT NOT NULL,
    base_position BIGINT NOT NULL,
    stream_position BIGINT NOT NULL,
    rules_hash TEXT NOT NULL,
    receipt_position BIGINT NOT NULL,
    notification_count BIGINT NOT NULL,
    highlight_count BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_nid, thread_id)
);
