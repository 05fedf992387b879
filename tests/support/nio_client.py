"""matrix-nio, a real third-party client, driven from inside a test.

nio runs on asyncio: a test body runs its scenario with :func:`run` (a fresh asyncio
loop; the server is another process, so the Twisted reactor pytest-twisted keeps in
the test process is not involved).  Accounts are registered with the blocking
helpers of tests/support/matrix.py and handed to nio with :func:`logged_in`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from nio import AsyncClient, AsyncClientConfig, SyncResponse

from tests.support.server_process import ServerProcess

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


@asynccontextmanager
async def logged_in(server: ServerProcess, account: dict[str, Any]) -> AsyncIterator[Any]:
    """An nio client using ``account`` (a /register or /login response)."""
    client = AsyncClient(
        server.base_url,
        account["user_id"],
        config=AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False),
    )
    client.restore_login(account["user_id"], account["device_id"], account["access_token"])
    try:
        yield client
    finally:
        await client.close()


async def synced(client: Any, **kwargs: Any) -> Any:
    """``client.sync(**kwargs)``, which must succeed."""
    response = await client.sync(**kwargs)
    if not isinstance(response, SyncResponse):
        raise AssertionError(f"sync failed: {response!r}")
    return response


async def poll(
    check: Callable[[], Awaitable[T | None]], *, within: float = 10.0, interval: float = 0.05
) -> T:
    """The first truthy result of ``check()``, tried every ``interval`` seconds;
    ``AssertionError`` if there is none within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still nothing after {within}s")
        await asyncio.sleep(interval)
