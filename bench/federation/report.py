"""The federation benchmark's table: ours, Synapse, and the ratio (>1: ours better)."""

from __future__ import annotations

import argparse
from typing import Any

#: (label, workload, path into the figures, lower is better)
ROWS: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("join: /join response", "join", ("join_ms",), True),
    ("join: full member list present", "join", ("full_state_ms",), True),
    ("join: live message lateness, median", "join", ("live_lateness", "median_ms"), True),
    ("join: live message lateness, p95", "join", ("live_lateness", "p95_ms"), True),
    (
        "join: lateness after host accepted, median",
        "join",
        ("live_lateness_after_host_accepted", "median_ms"),
        True,
    ),
    (
        "join: lateness after host accepted, p95",
        "join",
        ("live_lateness_after_host_accepted", "p95_ms"),
        True,
    ),
    ("inbound: PDUs/s persisted", "inbound", ("pdus_per_second",), False),
    ("inbound: /send of 50 PDUs, median", "inbound", ("transaction", "median_ms"), True),
    ("fan-out: all messages at all destinations", "fanout", ("all_delivered_seconds",), True),
    ("fan-out: PDUs delivered/s", "fanout", ("pdus_delivered_per_second",), False),
    (
        "fan-out: send -> last destination, median",
        "fanout",
        ("to_last_destination", "median_ms"),
        True,
    ),
    ("fan-out: send -> last destination, p95", "fanout", ("to_last_destination", "p95_ms"), True),
]


def _value(figures: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(figures, dict) or figures.get(key) is None:
            return None
        figures = figures[key]
    return float(figures)


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 10_000 else f"{value:,.0f}"


def print_table(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{'figure':<46} {'ours':>12} {'Synapse':>12} {'ratio':>7}")
    for label, workload, path, lower_better in ROWS:
        if workload not in results:
            continue
        ours = _value(results[workload].get("ours"), path)
        theirs = _value(results[workload].get("synapse"), path)
        ratio = "-"
        if ours and theirs:
            ratio = f"{(theirs / ours if lower_better else ours / theirs):.2f}"
        print(f"{label:<46} {_format(ours):>12} {_format(theirs):>12} {ratio:>7}")
    for workload in ("join", "inbound", "fanout"):
        for kind in ("ours", "synapse"):
            figures = results.get(workload, {}).get(kind)
            if isinstance(figures, dict) and "error" in figures:
                print(f"{workload} {kind}: {figures['error']}")
