"""What other servers send us: transactions of PDUs and EDUs, the checks every
received PDU passes before the event path sees it, and the events we fetch from
them (and serve to them) when a room's graph has holes.

spec: server-server-api.md#transactions, #pdus, #edus,
#backfilling-and-retrieving-missing-events, #retrieving-events
"""
