"""(c) User directory search over ``users`` accounts.

Setup: ``users`` accounts through the shared-secret admin API, each then given a
display name from :func:`display_name` with ``PUT /profile/{userId}/displayname``,
``setup_concurrency`` accounts at a time (the rate is reported).  They share no room
with the searcher: both servers run with ``user_directory.search_all_users: true``,
so every local user is searchable.  Before timing, the searcher looks for the last
account's name until it is found.

Queries (``POST /user_directory/search``, ``limit`` = ``directory_limit``): a full
name ("Grace Ito"), the first three letters of a last name, and a full name with
two adjacent letters of the last name swapped; ``warmup`` untimed and ``queries``
timed each, cycling through ten terms.  The results on the page and ``limited`` are
recorded next to the number of accounts whose name matches.

spec: data/api/client-server/users.yaml (POST /user_directory/search)
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any
from urllib.parse import quote

from bench.client_api.client import CLIENT_PREFIX, Client
from bench.client_api.servers import ServerUnderTest
from bench.client_api.workloads import bounded
from bench.search.sizes import SearchSizes, log, new_user, poll_until, timed_series
from bench.search.text import display_name, name_queries


async def directory_search(client: Client, term: str, limit: int) -> dict[str, Any]:
    body = {"search_term": term, "limit": limit}
    return (await client.call("POST", f"{CLIENT_PREFIX}/user_directory/search", body))[0]


async def set_display_name(client: Client, name: str) -> None:
    path = f"{CLIENT_PREFIX}/profile/{quote(client.user_id, safe='')}/displayname"
    await client.call("PUT", path, {"displayname": name})


async def run(
    server: ServerUnderTest, anonymous: Client, sizes: SearchSizes, figures: dict[str, Any]
) -> None:
    names = [display_name(index) for index in range(sizes.users)]
    made = 0

    async def make(index: int) -> None:
        nonlocal made
        client = await new_user(anonymous, f"dir_user_{index}", server.shared_secret)
        await set_display_name(client, names[index])
        made += 1
        if made % max(1, sizes.users // 10) == 0:
            log(server.name, f"directory: {made:,} of {sizes.users:,} accounts")

    start = time.perf_counter()
    await bounded(sizes.setup_concurrency, [partial(make, index) for index in range(sizes.users)])
    seconds = time.perf_counter() - start
    figures.update(
        users=sizes.users,
        setup_seconds=seconds,
        accounts_per_second=sizes.users / seconds,
        limit=sizes.directory_limit,
    )
    searcher = await new_user(anonymous, "dir_searcher", server.shared_secret)
    last = f"@dir_user_{sizes.users - 1}:"

    async def listed() -> bool:
        answer = await directory_search(searcher, names[-1], 50)
        return any(str(r.get("user_id", "")).startswith(last) for r in answer["results"])

    figures["index_lag_seconds"] = await poll_until(
        listed, sizes.index_timeout, "the last account in the directory"
    )
    for kind, terms in name_queries(names).items():
        figures.update(await _series(searcher, kind, terms, sizes))
    log(server.name, "directory queries done")


async def _series(
    searcher: Client, kind: str, terms: list[tuple[str, int]], sizes: SearchSizes
) -> dict[str, Any]:
    results: dict[str, int] = {}
    limited: dict[str, bool] = {}

    async def one(number: int) -> None:
        term = terms[number % len(terms)][0]
        answer = await directory_search(searcher, term, sizes.directory_limit)
        results[term] = len(answer.get("results", []))
        limited[term] = bool(answer.get("limited"))

    latency = await timed_series(sizes.queries, sizes.warmup, one)
    asked = [(term, matching) for term, matching in terms if term in results]
    return {
        **{f"{kind}_{key}": value for key, value in latency.items()},
        f"{kind}_found": statistics.fmean(results[term] for term, _ in asked),
        f"{kind}_expected": statistics.fmean(
            min(matching, sizes.directory_limit) for _, matching in asked
        ),
        f"{kind}_matching": statistics.fmean(matching for _, matching in asked),
        f"{kind}_limited": sum(limited[term] for term, _ in asked),
        f"{kind}_per_term": {
            term: {"found": results[term], "matching": matching, "limited": limited[term]}
            for term, matching in asked
        },
    }
