"""The comparison table of the E2EE benchmark: both figures and their ratio.

The ratio is :func:`bench.client_api.report.speedup`: Synapse / ours for a latency,
ours / Synapse for a throughput, so above 1 always means ours is better.
"""

from __future__ import annotations

from bench.client_api.report import Results, Row, speedup
from bench.e2ee.workloads import E2eeSizes


def rows(sizes: E2eeSizes) -> list[Row]:
    devices, senders = sizes.devices, sizes.senders
    pending = f"{sizes.pending:,} pending"
    return [
        Row(f"(a) /keys/query, {devices} devices, median", "keys_query", "median_ms", "ms", True),
        Row(f"(a) /keys/query, {devices} devices, p95", "keys_query", "p95_ms", "ms", True),
        Row(f"(b) /keys/claim, {devices} keys, median", "keys_claim", "median_ms", "ms", True),
        Row(f"(b) /keys/claim, {devices} keys, p95", "keys_claim", "p95_ms", "ms", True),
        Row(
            f"(c) to-device, {senders} senders, 1 device each",
            "to_device_one",
            "messages_per_second",
            "msg/s",
            False,
        ),
        Row(
            f"(c) to-device, {senders} senders, '*' ({devices})",
            "to_device_fanout",
            "messages_per_second",
            "req/s",
            False,
        ),
        Row(
            "(c)   the same, deliveries",
            "to_device_fanout",
            "deliveries_per_second",
            "msg/s",
            False,
        ),
        Row(f"(d) initial /sync, {pending}, median", "inbox_sync", "first_median_ms", "ms", True),
        Row(f"(d) drain all {pending}, median", "inbox_sync", "drain_median_ms", "ms", True),
    ]


def _value(results: Results, server: str, row: Row) -> float | None:
    value = results.get(server, {}).get(row.workload, {}).get(row.figure)
    return float(value) if isinstance(value, int | float) else None


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}" if unit.endswith("/s") else f"{value:,.1f} {unit}"


def table(results: Results, table_rows: list[Row]) -> str:
    """One line per row: ours, Synapse, and the ratio (>1: ours better); then errors."""
    width = max(len(row.label) for row in table_rows)
    header = f"{'figure':<{width}} {'ours':>13} {'Synapse':>13} {'ratio':>7}"
    lines = [header, "-" * len(header)]
    for row in table_rows:
        ours, theirs = _value(results, "ours", row), _value(results, "synapse", row)
        ratio = "-"
        if ours is not None and theirs is not None and ours > 0 and theirs > 0:
            ratio = f"{speedup(row, ours, theirs):.2f}"
        lines.append(
            f"{row.label:<{width}} {_shown(ours, row.unit):>13} {_shown(theirs, row.unit):>13} "
            f"{ratio:>7}"
        )
    lines.append(
        "ratio: Synapse / ours for latencies (ms), ours / Synapse for rates (/s); "
        "above 1 = ours better"
    )
    for server, per in results.items():
        lines.extend(
            f"{server}, {workload}: {figures['error']}"
            for workload, figures in per.items()
            if "error" in figures
        )
    return "\n".join(lines)
