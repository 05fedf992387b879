"""Email notifications end to end, on both engines: a user validates an address,
which sets up an email pusher; messages they read before the delay are never
mailed; those they have not read arrive as ONE digest at a real SMTP server
(aiosmtpd), with HTML and text parts, however long the queue, and a one-click
unsubscribe (RFC 8058: a POST; following the link only shows a page) that deletes
the pusher.

spec: client-server-api/modules/push.md (``kind: email``); RFC 8058
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api.client.test_rooms import send_text
from tests.api.client.test_threepids import add_validated_email
from tests.api.client.test_unread_counts import read, send_many, two_users_in_a_room
from tests.support.matrix import call, running_server
from tests.support.server_process import ServerProcess
from tests.support.smtp import Mailbox, html_part, smtp_server, text_part

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def server(
    tmp_path: Path, database_config: dict[str, Any], mailbox: Mailbox
) -> Iterator[ServerProcess]:
    email = mailbox.config(enable_notifs=True, notif_delay_before_mail="2s")
    with running_server(tmp_path, database_config, email=email) as process:
        yield process


def pushers(server: ServerProcess, token: str) -> list[dict[str, Any]]:
    response = call(server, "GET", "/pushers", token=token)
    assert response.status == 200, response.body
    found: list[dict[str, Any]] = response.json()["pushers"]
    return found


def test_unread_messages_arrive_as_one_digest_whose_link_unsubscribes(
    server: ServerProcess, mailbox: Mailbox
) -> None:
    alice, bob, room_id = two_users_in_a_room(server)
    refused = call(
        server,
        "POST",
        "/pushers/set",
        token=bob,
        body={
            "kind": "email",
            "app_id": "m.email",
            "pushkey": "someone-else@example.org",
            "app_display_name": "Email",
            "device_display_name": "someone-else@example.org",
            "lang": "en",
            "data": {},
        },
    )
    assert (refused.status, refused.json()["errcode"]) == (400, "M_THREEPID_NOT_FOUND")

    add_validated_email(server, mailbox, bob, "bob", "bob@example.org")
    [pusher] = pushers(server, bob)
    other_app = call(
        server,
        "POST",
        "/pushers/set",
        token=bob,
        body={**pusher, "app_id": "org.example.mail", "lang": "en"},
    )
    assert (other_app.status, other_app.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert "m.email" in other_app.json()["error"]
    assert (pusher["kind"], pusher["app_id"], pusher["pushkey"]) == (
        "email",
        "m.email",
        "bob@example.org",
    )

    seen = send_text(server, alice, room_id, "read before the delay", "seen").json()["event_id"]
    read(server, bob, room_id, seen)
    send_text(server, alice, room_id, "first <b>unread</b>", "unread-1")
    send_text(server, alice, room_id, "second unread", "unread-2")

    _validation, digest = mailbox.wait_for(2)
    assert digest["To"] == "bob@example.org"
    assert digest["From"] == "Test Chat <noreply@localhost>"
    assert digest["Subject"].startswith("[Test Chat] New messages")
    text, page = text_part(digest), html_part(digest)
    for part in (text, page):
        assert "read before the delay" not in part
        assert "second unread" in part
        assert "alice" in part
    assert "first <b>unread</b>" in text
    # Message text is escaped in HTML, never markup.
    assert "first &lt;b&gt;unread&lt;/b&gt;" in page
    assert "prefers-color-scheme: dark" in page
    assert f"https://matrix.to/#/{room_id}" in text
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = digest["List-Unsubscribe"].strip("<>")
    assert link in text

    parts = urlsplit(link)
    target = f"{parts.path}?{parts.query}"
    forged_target = f"{parts.path}?{parts.query.replace('sig=', 'sig=0')}"
    assert server.request("GET", forged_target).status == 403
    assert server.request("POST", forged_target, body=ONE_CLICK, headers=FORM).status == 403
    # Following the link (as a mail scanner would) only shows a page with a button.
    followed = server.request("GET", target)
    assert followed.status == 200
    assert b'<form method="post"' in followed.body
    assert b"Unsubscribed" not in followed.body
    assert len(pushers(server, bob)) == 1
    # The mail client's one-click POST (RFC 8058) unsubscribes.
    clicked = server.request("POST", target, body=ONE_CLICK, headers=FORM)
    assert clicked.status == 200
    assert b"Unsubscribed" in clicked.body
    assert pushers(server, bob) == []


def no_more_mail(mailbox: Mailbox, count: int, seconds: float) -> None:
    """Poll the SMTP server a while: still exactly ``count`` mails."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert len(mailbox.messages) == count
        time.sleep(0.1)


def test_everything_read_before_the_delay_is_never_mailed_and_a_long_queue_is_one_mail(
    tmp_path: Path, database_config: dict[str, Any], mailbox: Mailbox
) -> None:
    # A delay long enough for the 27 messages below to be sent well inside it.
    email = mailbox.config(enable_notifs=True, notif_delay_before_mail="3s")
    with running_server(tmp_path, database_config, email=email) as server:
        alice, bob, room_id = two_users_in_a_room(server)
        add_validated_email(server, mailbox, bob, "bob", "bob@example.org")
        assert len(pushers(server, bob)) == 1
        send_text(server, alice, room_id, "read in time", "seen-1")
        seen = send_text(server, alice, room_id, "read in time too", "seen-2")
        read(server, bob, room_id, seen.json()["event_id"])
        # Its digest fell due (3 s) and found nothing unread: no mail.
        no_more_mail(mailbox, 1, 5.0)

        # More than the pusher engine hands other kinds at once (20): one digest of all.
        send_many(server, alice, room_id, 27, "unread")
        _validation, digest = mailbox.wait_for(2)
        text = text_part(digest)
        assert "You have 27 unread notifications" in text
        assert "read in time" not in text
        # The room shows its last 5 messages and counts the rest.
        assert text.count("): unread ") == 5
        assert "And 22 more messages." in text
        no_more_mail(mailbox, 2, 5.0)
