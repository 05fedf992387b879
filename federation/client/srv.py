"""SRV lookups for server discovery: ``_matrix-fed._tcp.<host>``, then the deprecated
``_matrix._tcp.<host>``.

spec: server-server-api.md#resolving-server-names (steps 3.3, 3.4, 4, 5); RFC 2782 for
the records: targets are tried by ascending priority, and within one priority in a
random order weighted by ``weight``; a single record whose target is ``.`` means the
service is decidedly not available at that name.

Answers are cached for their TTL (at least a minute, at most a day); "no such record"
for 10 minutes; a lookup that failed (timeout, server failure) for a minute, during
which an expired answer, if any, is used again: a DNS hiccup should not make a
server we were talking to unreachable.  The DNS client is an injected Twisted
``IResolver`` (``twisted.names.client.createResolver()`` in production; tests serve
records from memory).

Per-process state: an LRU of SRV names → records and expiry (:data:`CACHE_SIZE`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import cast

import attrs
from twisted.internet.interfaces import IResolver
from twisted.names import dns
from twisted.names import error as dns_error

from homeserver.clock import Clock
from homeserver.util.caches import LruCache
from homeserver.util.single_flight import SingleFlight

logger = logging.getLogger(__name__)

MIN_TTL_MS = 60_000
MAX_TTL_MS = 86_400_000
NO_RECORD_CACHE_MS = 10 * 60_000
FAILURE_CACHE_MS = 60_000
#: Retries of one query (seconds each): 15 s in all, not Twisted's default minute.
QUERY_TIMEOUTS = (1, 3, 11)
CACHE_SIZE = 10_000


@attrs.frozen
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


@attrs.frozen
class _Entry:
    #: None: no record; empty: the service is decidedly unavailable (target ".").
    records: tuple[SrvRecord, ...] | None
    expires_at: int


class SrvResolver:
    def __init__(
        self, clock: Clock, dns_resolver: IResolver, *, rng: random.Random | None = None
    ) -> None:
        self._clock = clock
        self._dns = dns_resolver
        self._rng = rng or random.Random()
        self._cache: LruCache[str, _Entry] = LruCache(CACHE_SIZE)
        self._lookups: SingleFlight[str, _Entry] = SingleFlight()

    async def targets(self, service_name: str) -> tuple[tuple[str, int], ...] | None:
        """``(host, port)`` to try, in order, for ``service_name`` (e.g.
        ``_matrix-fed._tcp.example.com``); None when it has no SRV record, () when the
        service is decidedly not available there."""
        entry = self._cache.get(service_name)
        if entry is None or self._clock.time_msec() >= entry.expires_at:
            entry = await self._lookups.run(
                service_name, lambda: self._refresh(service_name, entry)
            )
        if entry.records is None:
            return None
        return tuple(
            (record.target, record.port) for record in order_records(entry.records, self._rng)
        )

    async def _refresh(self, service_name: str, previous: _Entry | None) -> _Entry:
        now = self._clock.time_msec()
        try:
            result = await self._dns.lookupService(service_name, QUERY_TIMEOUTS)
            answers = cast(Sequence[dns.RRHeader], result[0])
        except dns_error.DNSNameError:
            entry = _Entry(None, now + NO_RECORD_CACHE_MS)
        except Exception as error:  # timeout, SERVFAIL, refused...
            kept = None if previous is None else previous.records
            logger.info("SRV lookup of %s failed (%s); using %r", service_name, error, kept)
            entry = _Entry(kept, now + FAILURE_CACHE_MS)
        else:
            entry = _entry_from_answers(service_name, answers, now)
        self._cache.set(service_name, entry)
        return entry


def _entry_from_answers(service_name: str, answers: Sequence[dns.RRHeader], now: int) -> _Entry:
    records: list[SrvRecord] = []
    ttls: list[int] = []
    for answer in answers:
        payload = answer.payload
        if answer.type != dns.SRV or not isinstance(payload, dns.Record_SRV):
            continue  # CNAMEs and other records that came along
        target = payload.target.name.decode("ascii", "replace").rstrip(".")
        records.append(SrvRecord(payload.priority, payload.weight, payload.port, target))
        ttls.append(int(answer.ttl) * 1000)
    if not records:
        return _Entry(None, now + NO_RECORD_CACHE_MS)
    ttl = min(MAX_TTL_MS, max(MIN_TTL_MS, min(ttls)))
    if len(records) == 1 and records[0].target == "":
        logger.info("%s: the service is not available (SRV target '.')", service_name)
        return _Entry((), now + ttl)
    return _Entry(tuple(record for record in records if record.target), now + ttl)


def order_records(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782's order: by priority; within a priority, a weighted random draw
    (records of weight 0 rarely first, as the RFC asks)."""
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in records}):
        group = sorted(
            (record for record in records if record.priority == priority),
            key=lambda record: record.weight,
        )
        while group:
            point = rng.randint(0, sum(record.weight for record in group))
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= point:
                    ordered.append(group.pop(index))
                    break
    return ordered
