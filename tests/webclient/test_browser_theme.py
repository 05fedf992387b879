"""The theme follows the user to another device and to the server's own pages (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess
from tests.webclient.browser_support import (
    browser_user,
    run_browser_scenario,
)

pytestmark = pytest.mark.slow


def test_dark_theme_follows_to_another_device_and_server_pages(
    server: ServerProcess, tmp_path: Path
) -> None:
    users = {"alice": browser_user(server, "alice")}
    result = run_browser_scenario("theme", server, users, tmp_path).succeeded()

    assert result["cookie_a"] == "dark"
    assert result["theme_b_at_first_paint"] == "dark"
    assert result["fallback_status"] == 200
    assert result["server_page_theme"] == "dark"
    assert result["server_page_theme_without_cookie"] != "dark"
