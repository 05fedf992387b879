"""Email addresses on an account over HTTP, on both engines: the validation mail
arrives at a real SMTP server, following its link validates the session, which can
then be added (with user-interactive auth), listed and deleted.

spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information"), data/api/client-server/administrative_contact.yaml
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.matrix import call, password_auth, register, running_server
from tests.support.server_process import ServerProcess
from tests.support.smtp import Mailbox, html_part, link_path, smtp_server, text_part

SUBMIT = "/_matrix/client/unstable/add_threepid/email/submit_token"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def mail_server(
    tmp_path: Path, database_config: dict[str, Any], mailbox: Mailbox
) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config, email=mailbox.config()) as server:
        yield server


def request_token(
    server: ServerProcess, address: str, secret: str = "s3cret", attempt: int = 1
) -> Any:
    return call(
        server,
        "POST",
        "/account/3pid/email/requestToken",
        body={"client_secret": secret, "email": address, "send_attempt": attempt},
    )


def add(server: ServerProcess, token: str, username: str, sid: str, secret: str) -> Any:
    return call(
        server,
        "POST",
        "/account/3pid/add",
        token=token,
        body={"sid": sid, "client_secret": secret, "auth": password_auth(username)},
    )


def add_validated_email(
    server: ServerProcess, mailbox: Mailbox, token: str, username: str, address: str
) -> None:
    """The whole flow for one address: request, follow the mailed link, add."""
    before = len(mailbox.messages)
    response = request_token(server, address, secret=f"secret-{username}")
    assert response.status == 200, response.body
    sid = response.json()["sid"]
    mail = mailbox.wait_for(before + 1)[-1]
    page = server.request("GET", link_path(text_part(mail), SUBMIT))
    assert page.status == 200, page.body
    assert add(server, token, username, sid, f"secret-{username}").status == 200


def test_an_address_is_validated_by_its_mailed_link_then_added_listed_and_deleted(
    mail_server: ServerProcess, mailbox: Mailbox
) -> None:
    token = register(mail_server, "ada")["access_token"]
    caps = call(mail_server, "GET", "/capabilities", token=token).json()["capabilities"]
    assert caps["m.3pid_changes"] == {"enabled": True}

    response = request_token(mail_server, "Ada@Example.org")
    assert response.status == 200, response.body
    sid = response.json()["sid"]
    assert response.json()["submit_url"].endswith(SUBMIT)
    [mail] = mailbox.wait_for(1)
    assert mail["To"] == "ada@example.org"
    assert mail["Subject"] == "[localhost] Confirm your email address"
    assert mail.get_content_type() == "multipart/alternative"
    link = link_path(text_part(mail), SUBMIT)
    assert link in html_part(mail).replace("&amp;", "&")

    # Not validated yet: refused after the password stage.
    refused = add(mail_server, token, "ada", sid, "s3cret")
    assert refused.status == 400
    assert refused.json()["errcode"] == "M_THREEPID_AUTH_FAILED"

    page = mail_server.request("GET", link)
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert b"confirmed" in page.body

    assert add(mail_server, token, "ada", sid, "s3cret").status == 200
    listed = call(mail_server, "GET", "/account/3pid", token=token).json()["threepids"]
    assert [(t["medium"], t["address"]) for t in listed] == [("email", "ada@example.org")]
    assert listed[0]["validated_at"] <= listed[0]["added_at"]

    # An address on an account cannot be validated again, by anyone.
    again = request_token(mail_server, "ada@example.org", secret="other")
    assert again.status == 400
    assert again.json()["errcode"] == "M_THREEPID_IN_USE"

    deleted = call(
        mail_server,
        "POST",
        "/account/3pid/delete",
        token=token,
        body={"medium": "email", "address": "ada@example.org"},
    )
    assert deleted.status == 200
    assert deleted.json() == {"id_server_unbind_result": "no-support"}
    assert call(mail_server, "GET", "/account/3pid", token=token).json() == {"threepids": []}


def test_requests_that_are_wrong_are_refused_with_matrix_errors(
    mail_server: ServerProcess, mailbox: Mailbox
) -> None:
    token = register(mail_server, "bea")["access_token"]
    missing = call(
        mail_server,
        "POST",
        "/account/3pid/email/requestToken",
        body={"client_secret": "abc", "email": "bea@example.org"},
    )
    assert (missing.status, missing.json()["errcode"]) == (400, "M_MISSING_PARAM")
    bad_address = request_token(mail_server, "not an address")
    assert (bad_address.status, bad_address.json()["errcode"]) == (400, "M_INVALID_PARAM")
    bad_secret = request_token(mail_server, "bea@example.org", secret="no spaces")
    assert (bad_secret.status, bad_secret.json()["errcode"]) == (400, "M_INVALID_PARAM")

    first = request_token(mail_server, "bea@example.org")
    mailbox.wait_for(1)
    # The same send_attempt is a retry: same session, no second mail.
    retry = request_token(mail_server, "bea@example.org")
    assert retry.json()["sid"] == first.json()["sid"]
    sid = first.json()["sid"]
    wrong = mail_server.request(
        "POST",
        SUBMIT,
        json_body={"sid": sid, "client_secret": "s3cret", "token": "wrong"},
    )
    assert (wrong.status, wrong.json()["errcode"]) == (400, "M_TOKEN_INCORRECT")
    # A higher attempt sends a new mail (the first one's link no longer works).
    assert request_token(mail_server, "bea@example.org", attempt=2).json()["sid"] == sid
    first_mail, second_mail = mailbox.wait_for(2)
    stale = mail_server.request("GET", link_path(text_part(first_mail), SUBMIT))
    assert stale.status == 400
    fresh = link_path(text_part(second_mail), SUBMIT).split("?", 1)[1]
    values = dict(pair.split("=", 1) for pair in fresh.split("&"))
    accepted = mail_server.request(
        "POST",
        SUBMIT,
        json_body={"sid": values["sid"], "client_secret": "s3cret", "token": values["token"]},
    )
    assert accepted.json() == {"success": True}

    phone = call(
        mail_server,
        "POST",
        "/account/3pid/msisdn/requestToken",
        body={"client_secret": "abc", "country": "GB", "phone_number": "1", "send_attempt": 1},
    )
    assert phone.json()["errcode"] == "M_THREEPID_MEDIUM_NOT_SUPPORTED"
    bind = call(
        mail_server,
        "POST",
        "/account/3pid/bind",
        token=token,
        body={"client_secret": "a", "id_server": "x", "id_access_token": "y", "sid": "z"},
    )
    assert (bind.status, bind.json()["errcode"]) == (400, "M_SERVER_NOT_TRUSTED")
    assert call(mail_server, "GET", "/account/3pid").status == 401


def test_only_a_bare_address_is_accepted(mail_server: ServerProcess, mailbox: Mailbox) -> None:
    for address in (
        "x<victim@example.org>",
        "<victim@example.org>",
        "Victim <victim@example.org>",
        "a@example.org, victim@example.org",
        '"quoted"@example.org',
        "victim@example.org (comment)",
        "two@at@example.org",
    ):
        refused = request_token(mail_server, address)
        assert (refused.status, refused.json()["errcode"]) == (400, "M_INVALID_PARAM"), address
    assert request_token(mail_server, "First.Last+tag@Example.org").status == 200
    [mail] = mailbox.wait_for(1)
    assert mail["To"] == "first.last+tag@example.org"


def test_two_accounts_adding_one_address_at_once_one_is_refused(
    mail_server: ServerProcess, mailbox: Mailbox
) -> None:
    """Both validated the address before either added it: one add wins, the other is
    refused, whichever order the database runs them in."""
    users = {"fay": register(mail_server, "fay")["access_token"]}
    users["gus"] = register(mail_server, "gus")["access_token"]
    sessions = {}
    for index, username in enumerate(users):
        response = request_token(mail_server, "shared@example.org", secret=f"secret-{username}")
        assert response.status == 200, response.body
        sessions[username] = response.json()["sid"]
        mail = mailbox.wait_for(index + 1)[-1]
        assert mail_server.request("GET", link_path(text_part(mail), SUBMIT)).status == 200

    def add_for(username: str) -> Any:
        return add(mail_server, users[username], username, sessions[username], f"secret-{username}")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(add_for, users))
    assert sorted(r.status for r in results) == [200, 400]
    [refused] = [r for r in results if r.status == 400]
    assert refused.json()["errcode"] == "M_THREEPID_IN_USE"
    owners = [
        username
        for username, token in users.items()
        if call(mail_server, "GET", "/account/3pid", token=token).json()["threepids"]
    ]
    assert len(owners) == 1


def test_deactivation_removes_the_addresses(mail_server: ServerProcess, mailbox: Mailbox) -> None:
    token = register(mail_server, "hal")["access_token"]
    add_validated_email(mail_server, mailbox, token, "hal", "hal@example.org")
    assert request_token(mail_server, "hal@example.org", secret="x").json()["errcode"] == (
        "M_THREEPID_IN_USE"
    )
    deactivated = call(
        mail_server,
        "POST",
        "/account/deactivate",
        token=token,
        body={"auth": password_auth("hal")},
    )
    assert deactivated.status == 200, deactivated.body
    # The address is free again: another account can prove and add it.
    ivy = register(mail_server, "ivy")["access_token"]
    add_validated_email(mail_server, mailbox, ivy, "ivy", "hal@example.org")
    listed = call(mail_server, "GET", "/account/3pid", token=ivy).json()["threepids"]
    assert [t["address"] for t in listed] == ["hal@example.org"]


def test_without_email_addresses_cannot_be_added(open_server: ServerProcess) -> None:
    token = register(open_server, "cid")["access_token"]
    caps = call(open_server, "GET", "/capabilities", token=token).json()["capabilities"]
    assert caps["m.3pid_changes"] == {"enabled": False}
    refused = request_token(open_server, "cid@example.org")
    assert (refused.status, refused.json()["errcode"]) == (400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
