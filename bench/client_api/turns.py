"""Running the servers under test one after the other: ours, then Synapse.

One server at a time, so the other is not even idling while one is measured.  Each
gets its own data folder (under ``--workdir`` or a temporary folder) and its own
database (SQLite in that folder, or a fresh PostgreSQL database dropped at the end).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

from bench.client_api import databases
from bench.client_api.servers import ServerUnderTest, prepare_ours, prepare_synapse


def each_server(
    stack: ExitStack,
    wanted: Sequence[str],
    *,
    bench: str,
    workdir: Path | None,
    postgres: bool,
    log_level: str,
    adjust: Callable[[ServerUnderTest], None],
) -> Iterator[tuple[str, ServerUnderTest]]:
    """Start each of ``wanted`` (``"ours"``, ``"synapse"``) in turn, configured by
    ``adjust``, and yield it running; it is stopped when the caller asks for the next
    one (and, whatever happens, when ``stack`` closes).  ``bench`` names the
    temporary folder and the PostgreSQL databases."""
    if workdir is not None:
        workdir.mkdir(parents=True)
        root = workdir.resolve()
    else:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{bench}-")))
    for key in wanted:
        if postgres:
            database = databases.create_postgres_database(f"bench_{bench}_{key}")
            stack.callback(databases.drop, database)
        else:
            database = databases.sqlite_database(root / key / "data" / "bench.db")
        prepare = prepare_ours if key == "ours" else prepare_synapse
        server = prepare(root / key, database, log_level=log_level)
        adjust(server)
        stack.callback(server.stop)
        started = time.perf_counter()
        server.start()
        print(
            f"{server.name} {server.version} on {server.base_url} ({database.label}), "
            f"up in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        yield key, server
        server.stop()
