"""Screenshots of the main screens, and the performance figures (issue 15).

The screenshots (light and dark, desktop and phone) and ``performance.json`` are
written under the test's temporary directory; ``bench/bench_web_client.py`` runs the same
scenarios to print the figures for the note and to refresh docs/screenshots/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess
from tests.webclient.browser_support import (
    browser_user,
    run_browser_scenario,
)

pytestmark = pytest.mark.slow

SCREENS = ("login", "room", "room-settings", "settings")


def test_screenshots_of_the_main_screens_light_and_dark(
    server: ServerProcess, tmp_path: Path
) -> None:
    users = {name: browser_user(server, f"{name}-screens") for name in ("alice", "bob")}
    run = run_browser_scenario("screenshots", server, users, tmp_path, deadline_s=240)
    run.succeeded()

    taken = {shot["name"]: Path(shot["path"]) for shot in run.report["screenshots"]}
    for theme in ("light", "dark"):
        for size in ("desktop", "phone"):
            for screen in SCREENS:
                shot = taken[f"{theme}-{size}-{screen}"]
                assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The themes really differ: a dark screenshot is not the light one.
    assert taken["light-desktop-room"].read_bytes() != taken["dark-desktop-room"].read_bytes()


def test_bundle_size_and_time_to_interactive_are_measured(
    server: ServerProcess, tmp_path: Path
) -> None:
    users = {"alice": browser_user(server, "alice-perf")}
    result = run_browser_scenario(
        "performance", server, users, tmp_path, deadline_s=240
    ).succeeded()

    figures = result["performance"]
    (tmp_path / "performance.json").write_text(json.dumps(figures, indent=2))
    bundle = figures["bundle"]
    assert 0 < bundle["total_gzip"] < bundle["total_raw"]
    assert any(f["url"].endswith(".js") for f in bundle["files"])
    # Signed in, the crypto's WebAssembly is loaded too.
    signed_in = figures["bundle_signed_in"]
    assert signed_in["total_gzip"] >= bundle["total_gzip"]
    assert any(f["url"].endswith(".wasm") for f in signed_in["files"]), signed_in["files"]
    for name in ("cold_login", "warm_login", "warm_app"):
        assert 0 < figures["tti_ms"][name] < 30_000, (name, figures["tti_ms"])
