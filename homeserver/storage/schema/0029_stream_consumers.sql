-- Owner: storage.stream_consumers.
--
-- How far each background reader of the events stream (the search indexer, the
-- pusher queue, later the federation and application-service senders) has got.
-- Each keeps its own row so it can run in its own process and catch up after a
-- restart from where it stopped (docs/architecture.md, "Event stream consumers").
CREATE TABLE stream_consumers (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
