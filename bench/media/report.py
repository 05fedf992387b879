"""The comparison table of the media benchmark (rows as in the client-API one)."""

from __future__ import annotations

from bench.client_api.report import Results, Row, speedup
from bench.media.files import BenchFiles
from bench.media.workloads import MediaSizes


def rows(sizes: MediaSizes, files: BenchFiles) -> list[Row]:
    out: list[Row] = []
    clients = f"{sizes.concurrency} clients"
    for direction in ("upload", "download"):
        for file in files.binaries:
            for mode, how in (("seq", "sequential"), ("conc", clients)):
                label = f"{direction}, {file.label}, {how}"
                out.append(
                    Row(label, f"{direction}_{file.key}_{mode}", "mb_per_second", "MB/s", False)
                )
    for direction in ("upload", "download"):
        for file in files.binaries:
            label = f"server CPU per MB, {direction}, {file.label}"
            out.append(
                Row(label, f"{direction}_{file.key}_seq", "server_cpu_ms_per_mb", "ms", True)
            )
    for image in files.images:
        workload = f"thumbs_{image.key}"
        out.append(Row(f"{image.label}: upload, median", workload, "upload_median_ms", "ms", True))
        for name, what in (("crop96", "96x96 crop"), ("scale800", "800x600 scale")):
            out.extend(
                [
                    Row(
                        f"  upload -> {what}, median",
                        workload,
                        f"{name}_after_upload_median_ms",
                        "ms",
                        True,
                    ),
                    Row(
                        f"  upload + {what} (whole), median",
                        workload,
                        f"{name}_total_median_ms",
                        "ms",
                        True,
                    ),
                    Row(f"  {what} warm, median", workload, f"{name}_warm_median_ms", "ms", True),
                    Row(f"  {what} warm, p95", workload, f"{name}_warm_p95_ms", "ms", True),
                ]
            )
    return out


def _figure(results: Results, server: str, row: Row) -> float | None:
    value = results.get(server, {}).get(row.workload, {}).get(row.figure)
    return float(value) if isinstance(value, int | float) else None


def _cell(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.1f} {unit}"


def _ratio(row: Row, ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        # A zero is CPU below the clock tick (10 ms): no ratio to show.
        return "-"
    factor = speedup(row, ours, theirs)
    better, worse = ("less CPU", "more CPU") if "cpu" in row.figure else ("faster", "slower")
    return f"{factor:.2f}x {better}" if factor >= 1 else f"{1 / factor:.2f}x {worse}"


def table(results: Results, table_rows: list[Row]) -> str:
    """Figure | ours | Synapse | ours vs Synapse; then any errors, one line each."""
    header = f"{'figure':<46} {'ours':>13} {'Synapse':>13} {'ours vs Synapse':>18}"
    lines = [header, "-" * len(header)]
    for row in table_rows:
        ours, theirs = _figure(results, "ours", row), _figure(results, "synapse", row)
        lines.append(
            f"{row.label:<46} {_cell(ours, row.unit):>13} {_cell(theirs, row.unit):>13} "
            f"{_ratio(row, ours, theirs):>18}"
        )
    for server, per in results.items():
        for workload, figures in per.items():
            if "error" in figures:
                lines.append(f"{server}, {workload}: {figures['error']}")
    return "\n".join(lines)


def thumbnail_notes(results: Results, files: BenchFiles) -> list[str]:
    """What each server returned for each thumbnail size (format and dimensions)."""
    lines = []
    for image in files.images:
        for name in ("crop96", "scale800"):
            seen = []
            for server, per in results.items():
                figures = per.get(f"thumbs_{image.key}", {})
                if f"{name}_dimensions" in figures:
                    width, height = figures[f"{name}_dimensions"]
                    seen.append(
                        f"{server} {figures[f'{name}_format']} {width}x{height} "
                        f"({figures[f'{name}_bytes']:,} bytes)"
                    )
            if seen:
                lines.append(f"{image.label} {name}: " + ", ".join(seen))
    return lines
