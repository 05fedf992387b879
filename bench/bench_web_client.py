"""Benchmark: the web client's bundle size and time to interactive, in headless Chromium.

Starts the real server serving the built app (web-client/dist, or ``--dist``), runs
the browser test's ``performance`` scenario (web-client/tests/e2e/scenarios/
performance.mjs) and prints:

- the bundle: each same-origin JS, CSS and wasm file the page loads on a cold start
  (from the browser's resource timing), raw and gzipped (level 9), and what came over
  the wire (``transferSize``, which includes headers);
- time to interactive, from navigation start until the login form's "Sign in" button
  or the composer ("Message") is visible and enabled, median of ``--runs``: a cold
  load (fresh profile, no service worker), a warm load of the same screen (service
  worker active), and a warm load of the signed-in app with a room open;

next to Element Web's published figures (none found: see ELEMENT_WEB below).
``--keep-screenshots`` also runs the ``screenshots`` scenario and copies a chosen few
to docs/screenshots/ (palette-reduced when bigger than 150 KB) for the README.  From
the repository root, after ``npm run build --prefix web-client``:

    .venv/bin/python -m bench.bench_web_client [--runs 5] [--json FILE]
        [--keep-screenshots] [--workdir DIR] [--dist DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
#: The screenshots kept for the README (of the screenshots scenario's 36).
KEPT_SCREENSHOTS = (
    "light-desktop-room",
    "dark-desktop-room",
    "dark-phone-room",
    "light-phone-rooms",
    "light-desktop-settings",
    "dark-desktop-room-settings",
)
MAX_SCREENSHOT_BYTES = 150_000

#: Element Web's published figures: we found none.  Element publishes no bundle size
#: or load-time figures; its startup benchmark was asked for (element-web issue
#: #17698, element-meta #255 "Improve the load time") but no results are published,
#: and element-web #30477 reports 1-3 minutes to a usable app after a refresh on a
#: large matrix.org account (anecdotal, not comparable).  Fill these in when a
#: published figure exists, with its source.
ELEMENT_WEB: dict[str, str] = {
    "bundle (gzip)": "not published",
    "cold TTI": "not published",
    "warm TTI": "not published",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="loads per figure (median)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep-screenshots", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep the server and outputs here")
    parser.add_argument("--dist", type=Path, help="the built app (default web-client/dist)")
    args = parser.parse_args()
    if args.dist is not None:
        os.environ["WEB_CLIENT_DIST"] = str(args.dist.resolve())
    os.environ["E2E_PERF_RUNS"] = str(args.runs)
    sys.path.insert(0, str(REPO_ROOT))
    # After WEB_CLIENT_DIST is set: the module reads it at import.
    from tests.webclient import browser_support as browser

    missing = browser.missing_requirement()
    if missing is not None:
        sys.exit(missing[0])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-web-client-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with browser.serving_web_client(workdir / "server") as server:
        # The performance scenario's rooms stay out of the screenshots: its own user.
        perf_user = {"alice": browser.browser_user(server, "perf")}
        run = browser.launch_scenario(
            "performance",
            server,
            perf_user,
            workdir / "performance",
            deadline_s=600,
        )
        if not run.report.get("ok"):
            sys.exit(run.diagnostics())
        figures: dict[str, Any] = run.result["performance"]
        print_table(figures)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        if args.keep_screenshots:
            users = {name: browser.browser_user(server, name) for name in ("alice", "bob")}
            shots = browser.launch_scenario(
                "screenshots", server, users, workdir / "screenshots", deadline_s=600
            )
            if not shots.report.get("ok"):
                sys.exit(shots.diagnostics())
            keep_screenshots({s["name"]: Path(s["path"]) for s in shots.report["screenshots"]})
    print(f"outputs in {workdir}")


def print_table(figures: dict[str, Any]) -> None:
    bundle = figures["bundle"]
    tti = figures["tti_ms"]
    print(f"browser: Chromium {figures['browser']}, median of {figures['runs']} loads\n")
    print("wire: transferSize, with headers; 0 when the service worker's cache answered")
    print(f"{'file':<48} {'raw':>10} {'gzip':>10} {'wire':>10}")
    for f in sorted(bundle["files"], key=lambda f: -f["gzip"]):
        print(f"{f['url']:<48} {kib(f['raw']):>10} {kib(f['gzip']):>10} {kib(f['transfer']):>10}")
    print(
        f"{'total':<48} {kib(bundle['total_raw']):>10} {kib(bundle['total_gzip']):>10}"
        f" {kib(bundle['total_transfer']):>10}\n"
    )
    signed_in = figures["bundle_signed_in"]
    print("signed in with a room open, in all (the crypto wasm included):")
    for f in sorted(signed_in["files"], key=lambda f: -f["gzip"]):
        print(f"{f['url']:<48} {kib(f['raw']):>10} {kib(f['gzip']):>10} {kib(f['transfer']):>10}")
    print(
        f"{'total':<48} {kib(signed_in['total_raw']):>10} {kib(signed_in['total_gzip']):>10}"
        f" {kib(signed_in['total_transfer']):>10}\n"
    )
    rows = [
        ("bundle (gzip), login", kib(bundle["total_gzip"]), ELEMENT_WEB["bundle (gzip)"]),
        ("bundle (gzip), all", kib(signed_in["total_gzip"]), ELEMENT_WEB["bundle (gzip)"]),
        ("cold TTI", f"{tti['cold_login']} ms (login)", ELEMENT_WEB["cold TTI"]),
        ("warm TTI", f"{tti['warm_login']} ms (login)", ELEMENT_WEB["warm TTI"]),
        ("warm TTI, signed in", f"{tti['warm_app']} ms ({figures['warm_app_marker'][0]})", "-"),
    ]
    print(f"{'figure':<22} {'ours':>24}   Element Web")
    for name, ours, element in rows:
        print(f"{name:<22} {ours:>24}   {element}")


def kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:.1f} KiB"


def keep_screenshots(taken: dict[str, Path]) -> None:
    """Copy the chosen screenshots to docs/screenshots/, each at most ~150 KB."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in KEPT_SCREENSHOTS:
        target = SCREENSHOTS / f"{name}.png"
        shutil.copyfile(taken[name], target)
        if target.stat().st_size > MAX_SCREENSHOT_BYTES:
            # A UI screenshot has few colours: a 256-colour palette keeps it readable.
            with Image.open(taken[name]) as image:
                image.convert("RGB").quantize(colors=256).save(target, optimize=True)
        print(f"kept {target.relative_to(REPO_ROOT)} ({target.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
