"""Room history over federation: serving ``/backfill`` and ``/timestamp_to_event``
to other servers, and fetching history this server lacks for its clients'
``/messages`` and ``/timestamp_to_event``."""
