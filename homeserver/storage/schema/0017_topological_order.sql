-- Owner: storage.events (read by storage.timeline).
--
-- /messages and /context walk a room in graph order, (depth, stream_ordering),
-- backwards or forwards; one B-tree serves both directions.  Events filled in by
-- backfill carry negative stream positions (so /sync never reports them as new)
-- and still sort into history by depth.  events_by_room_stream stays for /sync.
CREATE INDEX events_by_room_graph ON events (room_nid, depth, stream_ordering);
