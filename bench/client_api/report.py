"""The comparison table and the JSON record of one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

#: Results: server key ("ours"/"synapse") -> workload -> figures, or {"error": text}.
Results = dict[str, dict[str, dict[str, Any]]]


@attrs.frozen
class Row:
    label: str
    workload: str
    figure: str
    unit: str
    lower_is_better: bool


def rows(senders: int, sync_rooms: int) -> list[Row]:
    return [
        Row("(a) send latency, median", "send_latency", "median_ms", "ms", True),
        Row("(a) send latency, p95", "send_latency", "p95_ms", "ms", True),
        Row(
            f"(b) send throughput, {senders} users, 1 room",
            "throughput_one_room",
            "messages_per_second",
            "msg/s",
            False,
        ),
        Row(
            f"(b) send throughput, {senders} users, {senders} rooms",
            "throughput_many_rooms",
            "messages_per_second",
            "msg/s",
            False,
        ),
        Row(
            f"(c) initial /sync, {sync_rooms} rooms, median",
            "initial_sync",
            "median_ms",
            "ms",
            True,
        ),
        Row("(d) /sync wake-up, median", "sync_wakeup", "median_ms", "ms", True),
        Row("(d) /sync wake-up, p95", "sync_wakeup", "p95_ms", "ms", True),
        Row("(e) /createRoom, private group, median", "create_room", "median_ms", "ms", True),
        Row("(e) /createRoom, private group, p95", "create_room", "p95_ms", "ms", True),
        Row("scale: 200 users, 16 in flight", "scale", "messages_per_second", "msg/s", False),
        Row("scale: send latency, median", "scale", "send_median_ms", "ms", True),
        Row("scale: database per message", "scale", "kb_per_message", "KB", True),
        Row("scale: database per membership event", "scale", "kb_per_membership", "KB", True),
        Row("scale: join, 200-member room, median", "scale", "join_200_median_ms", "ms", True),
        Row("scale: join, 1,000-member room, median", "scale", "join_1000_median_ms", "ms", True),
        Row(
            "scale: 50x40 unread, initial /sync, median",
            "scale",
            "backlog_initial_sync_median_ms",
            "ms",
            True,
        ),
        Row(
            "scale: 50x40 unread, incr. /sync, median",
            "scale",
            "backlog_incremental_sync_median_ms",
            "ms",
            True,
        ),
    ]


def speedup(row: Row, ours: float, theirs: float) -> float:
    """How many times faster ours is (>1: ours faster; <1: Synapse faster)."""
    if row.lower_is_better:
        return theirs / ours if ours > 0 else float("inf")
    return ours / theirs if theirs > 0 else float("inf")


def _figure(results: Results, server: str, row: Row) -> float | None:
    figures = results.get(server, {}).get(row.workload, {})
    value = figures.get(row.figure)
    return float(value) if isinstance(value, int | float) else None


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "msg/s":
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}" if unit == "KB" else f"{value:,.1f} {unit}"


def table(results: Results, table_rows: list[Row]) -> str:
    """Figure | ours | Synapse | ours faster by; then any errors, one line each."""
    header = f"{'figure':<42} {'ours':>14} {'Synapse':>14} {'ours vs Synapse':>18}"
    lines = [header, "-" * len(header)]
    for row in table_rows:
        ours, theirs = _figure(results, "ours", row), _figure(results, "synapse", row)
        if ours is not None and theirs is not None:
            factor = speedup(row, ours, theirs)
            better, worse = ("smaller", "larger") if row.unit == "KB" else ("faster", "slower")
            ratio = f"{factor:.2f}x {better}" if factor >= 1 else f"{1 / factor:.2f}x {worse}"
        else:
            ratio = "-"
        lines.append(
            f"{row.label:<42} {_cell(ours, row.unit):>14} {_cell(theirs, row.unit):>14} {ratio:>18}"
        )
    for server in ("ours", "synapse"):
        errors = {
            workload: figures["error"]
            for workload, figures in results.get(server, {}).items()
            if "error" in figures
        }
        by_error: dict[str, list[str]] = {}
        for workload, error in errors.items():
            by_error.setdefault(error, []).append(workload)
        lines.extend(
            f"{server}, {', '.join(workloads)}: {error}" for error, workloads in by_error.items()
        )
    return "\n".join(lines)


def add_ratios(results: Results, table_rows: list[Row]) -> dict[str, float]:
    """Each row's speed-up of ours over Synapse, for the JSON record."""
    ratios = {}
    for row in table_rows:
        ours, theirs = _figure(results, "ours", row), _figure(results, "synapse", row)
        if ours is not None and theirs is not None:
            ratios[f"{row.workload}.{row.figure}"] = speedup(row, ours, theirs)
    return ratios


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
