"""Measuring CPU time from ``/proc``: a server's process tree, the PostgreSQL backends
serving its database, this process, and the whole machine (``bench_live``)."""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path

import attrs
import psycopg2

from bench.client_api import databases

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; the rest follows the last ")".
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, plus those of its children it has reaped."""
    fields = _proc_stat(pid)
    if fields is None:
        return None
    # Fields 14-17: utime, stime, cutime, cstime.
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """:func:`process_cpu_seconds` of every process in the tree."""
    return sum(process_cpu_seconds(pid) or 0.0 for pid in process_tree(root))


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (``/proc/stat``: user, nice, system,
    irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class DatabaseBackends:
    """The PostgreSQL processes serving one server's database.  They are not the
    homeserver's children, but their work is the server's: their CPU is reported
    next to the server's own."""

    def __init__(self, database: databases.Database) -> None:
        args = {key: value for key, value in database.args.items() if not key.startswith("cp_")}
        self._name = str(args["database"])
        self._conn = psycopg2.connect(**args, connect_timeout=10)
        self._conn.autocommit = True

    def cpu_seconds(self) -> dict[int, float]:
        """Each backend's CPU seconds (the watcher's own connection left out)."""
        with self._conn.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self._name,),
            )
            pids = [int(row[0]) for row in cursor.fetchall()]
        return {pid: seconds for pid in pids if (seconds := process_cpu_seconds(pid)) is not None}

    def close(self) -> None:
        self._conn.close()


@attrs.frozen
class CpuReading:
    """CPU seconds at one moment: the server's, its database backends' (PostgreSQL),
    this process's and the whole machine's."""

    server: float
    backends: dict[int, float] | None
    client: float
    machine: float
    wall: float

    def rates_since(self, before: CpuReading) -> dict[str, float | None]:
        """CPU seconds per wall second since ``before``: the server, its database
        backends (a backend that ended in between is missed, one that started is
        counted whole), this load generator, and everything else on the machine
        (other work skews the figures)."""
        wall = self.wall - before.wall
        server = (self.server - before.server) / wall
        client = (self.client - before.client) / wall
        machine = (self.machine - before.machine) / wall
        database = None
        if self.backends is not None and before.backends is not None:
            earlier = before.backends
            database = sum(now - earlier.get(pid, 0.0) for pid, now in self.backends.items())
            database /= wall
        return {
            "seconds": wall,
            "server": server,
            "database": database,
            "server_and_database": None if database is None else server + database,
            "client": client,
            "other": max(0.0, machine - server - client - (database or 0.0)),
        }


@attrs.frozen
class CpuMeter:
    """Takes :class:`CpuReading` of one running server."""

    pid: int
    backends: DatabaseBackends | None

    async def read(self) -> CpuReading:
        # /proc (and PostgreSQL) are read off the event loop: it would show as loop lag.
        def read_sync() -> tuple[float, dict[int, float] | None, float]:
            backends = None if self.backends is None else self.backends.cpu_seconds()
            return tree_cpu_seconds(self.pid), backends, machine_busy_seconds()

        server, backends, machine = await asyncio.to_thread(read_sync)
        return CpuReading(server, backends, own_cpu_seconds(), machine, time.perf_counter())


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the accounts and rooms -----------------------------------------------------------------
