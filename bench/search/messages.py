"""(a) Message search latency and (b) the search index's growth.

Setup: ``senders`` users (sender 0 also searches) in ``rooms`` public rooms, all of
them in every room.  Populate: message *i* of :class:`MessageText` goes into room
*i* mod ``rooms`` from sender (*i* // ``rooms``) mod ``senders``; one task per room
sends its messages one after another, all rooms at once.  The database and its
search tables are measured before and after.  Then one more message carrying a
word nobody else used is sent, and the search for it is repeated until it is found,
so every server has indexed everything before any timing (its delay is reported:
a server that indexes in the background shows it here).

Queries (``POST /search``, ``room_events``, ``order_by`` rank and recent): for each
kind -- a frequent word, a planted rare word, that rare word with two adjacent
letters swapped, and the first five letters of a rare word -- ``warmup`` untimed and
``queries`` timed requests, cycling through the kind's terms.  Every answer's
``count`` (or, without one, the length of ``results``) is recorded next to the
number of messages that hold the word.

spec: client-server-api/modules/search.md
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.client_api.client import CLIENT_PREFIX, Client
from bench.client_api.servers import ServerUnderTest
from bench.search import storage
from bench.search.sizes import SETTLE_SECONDS, SearchSizes, log, new_user, poll_until, timed_series
from bench.search.text import QUERY_KINDS, SENTINEL_WORD, MessageText, Query

ORDERS = ("rank", "recent")


async def search(client: Client, term: str, order: str) -> dict[str, Any]:
    """One ``POST /search`` over the user's rooms; the ``room_events`` answer."""
    body = {"search_categories": {"room_events": {"search_term": term, "order_by": order}}}
    answer = (await client.call("POST", f"{CLIENT_PREFIX}/search", body))[0]
    events: dict[str, Any] = answer["search_categories"]["room_events"]
    return events


def found(answer: dict[str, Any]) -> int:
    """The answer's total, or (a server that gives none) the results on its page."""
    count = answer.get("count")
    return int(count) if isinstance(count, int) else len(answer.get("results", []))


async def _sizes(server: ServerUnderTest) -> tuple[int, int]:
    await asyncio.sleep(SETTLE_SECONDS)
    tables = storage.search_tables(server.key)
    whole = await asyncio.to_thread(storage.size_bytes, server.database)
    index = await asyncio.to_thread(storage.tables_bytes, server.database, tables)
    return whole, index


async def _setup(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes
) -> tuple[list[Client], list[str]]:
    senders = [
        await new_user(anonymous, f"search_sender_{number}", server.shared_secret)
        for number in range(sizes.senders)
    ]
    rooms = []
    for number in range(sizes.rooms):
        room_id = await senders[0].create_room(room_version="12", name=f"search room {number}")
        await asyncio.gather(*(sender.join(room_id) for sender in senders[1:]))
        rooms.append(room_id)
    return senders, rooms


async def _send(client: Client, room_id: str, text: str) -> None:
    await client.send_text(room_id, text)


async def _populate(
    server: ServerUnderTest, senders: list[Client], rooms: list[str], texts: list[str]
) -> float:
    """Send every message; the wall time it took."""
    done = 0
    step = max(1, len(texts) // 10)

    async def room_worker(room: int) -> None:
        nonlocal done
        for index in range(room, len(texts), len(rooms)):
            sender = senders[(index // len(rooms)) % len(senders)]
            await _send(sender, rooms[room], texts[index])
            done += 1
            if done % step == 0:
                log(server.name, f"populated {done:,} of {len(texts):,}")

    start = time.perf_counter()
    await asyncio.gather(*(room_worker(room) for room in range(len(rooms))))
    return time.perf_counter() - start


async def run(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes, figures: dict[str, Any]
) -> None:
    """Fill ``figures`` as the workload goes, so a failing step keeps what came before."""
    senders, rooms = await _setup(server, anonymous, sizes)
    text = MessageText(sizes.messages)
    texts = await asyncio.to_thread(lambda: list(text.all_messages()))
    db_before, index_before = await _sizes(server)
    seconds = await _populate(server, senders, rooms, texts)
    log(server.name, f"populated {len(texts):,} in {seconds:.0f} s")
    messages = len(texts) + 1
    figures.update(
        messages=messages,
        populate_seconds=seconds,
        populate_messages_per_second=len(texts) / seconds,
        index_tables=storage.search_tables(server.key),
    )
    searcher = senders[0]
    await _send(senders[-1], rooms[-1], f"The last word is {SENTINEL_WORD}")

    async def indexed() -> bool:
        return found(await search(searcher, SENTINEL_WORD, "recent")) >= 1

    try:
        figures["index_lag_seconds"] = await poll_until(
            indexed, sizes.index_timeout, "indexing the last message"
        )
    finally:
        db_after, index_after = await _sizes(server)
        figures.update(
            db_bytes_before=db_before,
            db_bytes_after=db_after,
            db_bytes_per_message=(db_after - db_before) / messages,
            index_bytes_after=index_after,
            index_bytes_per_message=(index_after - index_before) / messages,
        )
    queries = text.queries()
    for kind in QUERY_KINDS:
        for order in ORDERS:
            figures.update(await _query_series(searcher, kind, order, queries, sizes))
    log(server.name, "search queries done")


async def _query_series(
    searcher: Client, kind: str, order: str, queries: list[Query], sizes: SearchSizes
) -> dict[str, Any]:
    terms = [query for query in queries if query.kind == kind]
    counts: dict[str, int] = {}
    page: dict[str, int] = {}

    async def one(number: int) -> None:
        query = terms[number % len(terms)]
        answer = await search(searcher, query.term, order)
        counts[query.term] = found(answer)
        page[query.term] = len(answer.get("results", []))

    latency = await timed_series(sizes.queries, sizes.warmup, one)
    prefix = f"{kind}_{order}"
    asked = [query for query in terms if query.term in counts]
    return {
        **{f"{prefix}_{key}": value for key, value in latency.items()},
        f"{prefix}_found": statistics.fmean(counts[query.term] for query in asked),
        f"{prefix}_expected": statistics.fmean(query.expected for query in asked),
        f"{prefix}_first_page": statistics.fmean(page[query.term] for query in asked),
        f"{prefix}_per_term": {
            query.term: {"found": counts[query.term], "expected": query.expected} for query in asked
        },
    }
