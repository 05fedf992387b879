"""The web client offline and in the background, in headless Chromium (issue 15).

Sending while offline (the outbox delivers each message once, in order), an offline
reload (service worker + IndexedDB), and a notification while the page is hidden.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.matrix import call
from tests.support.server_process import ServerProcess
from tests.webclient.browser_support import (
    run_browser_scenario,
)

pytestmark = pytest.mark.slow

Users = dict[str, dict[str, str]]


def test_messages_sent_offline_are_delivered_once_in_order(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("offline_send", server, users, tmp_path).succeeded()

    response = call(
        server,
        "GET",
        f"/rooms/{result['room_id']}/messages?dir=f&limit=100",
        users["bob"]["access_token"],
    )
    assert response.status == 200, response.body
    bodies = [
        e["content"].get("body")
        for e in response.json()["chunk"]
        if e["type"] == "m.room.message" and e["sender"] == users["alice"]["user_id"]
    ]
    assert bodies == [result["first"], result["second"]]


def test_offline_reload_shows_the_app_and_history(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("offline_reload", server, users, tmp_path).succeeded()

    assert len(result["history_shown_offline"]) == 3


def test_notification_is_raised_while_the_page_is_hidden(
    server: ServerProcess, users: Users, tmp_path: Path
) -> None:
    result = run_browser_scenario("notification", server, users, tmp_path).succeeded()

    assert result["permission"] == "granted"
    notification = result["notification"]
    assert "Ping while you are away" in f"{notification['title']} {notification['body']}"
