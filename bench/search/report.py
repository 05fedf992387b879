"""The comparison table of the search benchmark: ours, Synapse and their ratio.

The ratio is Synapse / ours for latencies, sizes and CPU, ours / Synapse for rates,
so above 1 always means ours is better.  Rows that count results (``found``) have
no ratio: they say what each server answered next to what the data holds.
"""

from __future__ import annotations

from typing import Any

import attrs

from bench.client_api.report import Results
from bench.search.messages import ORDERS
from bench.search.sizes import SearchSizes
from bench.search.text import QUERY_KINDS

_KIND_LABEL = {
    "common": "frequent word",
    "rare": "rare word",
    "misspelled": "misspelled rare word",
    "prefix": "prefix of rare word",
}
_NAME_LABEL = {"full_name": "full name", "prefix": "3-letter prefix", "misspelled": "misspelled"}


@attrs.frozen
class Row:
    label: str
    workload: str
    figure: str
    unit: str  # "ms", "s", "/s", "B", "found" (no ratio), "%"
    lower_is_better: bool = True
    #: For "found" rows: the figure holding what the data holds.
    expected: str | None = None


def rows(sizes: SearchSizes) -> list[Row]:
    table = [
        Row(
            f"(a) populate {sizes.messages:,} messages",
            "search",
            "populate_messages_per_second",
            "msg/s",
            False,
        ),
        Row("(a) last message searchable after", "search", "index_lag_seconds", "s"),
    ]
    for kind in QUERY_KINDS:
        for order in ORDERS:
            name = f"{kind}_{order}"
            label = f"(a) {_KIND_LABEL[kind]}, {order}"
            table += [
                Row(f"{label}, p50", "search", f"{name}_median_ms", "ms"),
                Row(f"{label}, p95", "search", f"{name}_p95_ms", "ms"),
                Row(
                    f"{label}, found / holding",
                    "search",
                    f"{name}_found",
                    "found",
                    expected=f"{name}_expected",
                ),
            ]
    table += [
        Row("(b) database per message", "search", "db_bytes_per_message", "B"),
        Row("(b) search index per message", "search", "index_bytes_per_message", "B"),
        Row(
            f"(c) {sizes.users:,} accounts with names",
            "directory",
            "accounts_per_second",
            "/s",
            False,
        ),
    ]
    for kind, label in _NAME_LABEL.items():
        table += [
            Row(f"(c) directory, {label}, p50", "directory", f"{kind}_median_ms", "ms"),
            Row(f"(c) directory, {label}, p95", "directory", f"{kind}_p95_ms", "ms"),
            Row(
                f"(c) directory, {label}, found / expected",
                "directory",
                f"{kind}_found",
                "found",
                expected=f"{kind}_expected",
            ),
        ]
    members = f"{sizes.push_members:,}-member room"
    table += [
        Row(f"(d) server CPU per message, {members}", "push", "server_cpu_ms_per_message", "ms"),
        Row("(d)   + database backends", "push", "database_cpu_ms_per_message", "ms"),
        Row("(d) send -> first push, p50", "push", "first_push_median_ms", "ms"),
        Row("(d) send -> last member's push, p50", "push", "last_push_median_ms", "ms"),
        Row("(d) send -> last member's push, p95", "push", "last_push_p95_ms", "ms"),
        Row("(d) pushes delivered / expected", "push", "delivered", "found", expected="expected"),
        Row("(d) pushes per second", "push", "pushes_per_second", "/s", False),
        Row("(d) database per message", "push", "db_bytes_per_message", "B"),
    ]
    return table


def _value(results: Results, server: str, workload: str, figure: str) -> float | None:
    value = results.get(server, {}).get(workload, {}).get(figure)
    return float(value) if isinstance(value, int | float) else None


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit.endswith("/s"):
        return f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}"


def _cell(results: Results, server: str, row: Row) -> str:
    value = _value(results, server, row.workload, row.figure)
    if row.unit != "found":
        return _shown(value, row.unit)
    expected = _value(results, server, row.workload, row.expected or "")
    if value is None or expected is None:
        return "-"
    if value % 1 or expected % 1:
        return f"{value:,.1f} / {expected:,.1f}"
    return f"{value:,.0f} / {expected:,.0f}"


def ratio(row: Row, ours: float, theirs: float) -> float:
    return theirs / ours if row.lower_is_better else ours / theirs


def table(results: Results, table_rows: list[Row]) -> str:
    """One line per row with a figure on either server; then errors."""
    shown = [
        row
        for row in table_rows
        if any(_value(results, s, row.workload, row.figure) is not None for s in results)
    ]
    width = max((len(row.label) for row in shown), default=10)
    header = f"{'figure':<{width}} {'ours':>16} {'Synapse':>16} {'ratio':>7}"
    lines = [header, "-" * len(header)]
    for row in shown:
        ours = _value(results, "ours", row.workload, row.figure)
        theirs = _value(results, "synapse", row.workload, row.figure)
        shown_ratio = "-"
        if row.unit != "found" and ours and theirs and ours > 0 and theirs > 0:
            shown_ratio = f"{ratio(row, ours, theirs):.2f}"
        lines.append(
            f"{row.label:<{width}} {_cell(results, 'ours', row):>16} "
            f"{_cell(results, 'synapse', row):>16} {shown_ratio:>7}"
        )
    lines.append(
        "ratio: Synapse / ours for ms, B and CPU, ours / Synapse for rates; above 1 = ours "
        "better.  'found / holding': the answers' count against the messages holding the "
        "word (for a misspelling: the correct word); directory: results against "
        "min(matching accounts, limit)"
    )
    for server, per in results.items():
        lines.extend(
            f"{server}, {workload}: {figures['error']}"
            for workload, figures in per.items()
            if "error" in figures
        )
    return "\n".join(lines)


def ratios(results: Results, table_rows: list[Row]) -> dict[str, float]:
    """Every row's ratio, for the JSON record (>1: ours better)."""
    record = {}
    for row in table_rows:
        ours = _value(results, "ours", row.workload, row.figure)
        theirs = _value(results, "synapse", row.workload, row.figure)
        if row.unit != "found" and ours and theirs and ours > 0 and theirs > 0:
            record[f"{row.workload}.{row.figure}"] = ratio(row, ours, theirs)
    return record


def push_tables(results: Results) -> list[str]:
    """Lines naming the push tables that grew, per server."""
    lines = []
    for server, per in results.items():
        grown: dict[str, Any] | None = per.get("push", {}).get("push_table_rows_per_message")
        if grown is None:
            continue
        listed = ", ".join(f"{name} {rows:,.1f}" for name, rows in grown.items())
        lines.append(
            f"{server}: rows added per message: {listed or 'no push or notification table grew'}"
        )
    return lines
