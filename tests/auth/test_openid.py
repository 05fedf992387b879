"""OpenID tokens: issued to the requester only, name their user until they expire,
are kept in the database (so another process, or the same one after a restart,
knows them), and a user cannot hold more than a few at once.  Both engines.

spec: client-server-api/_index.md#openid, server-server-api.md#openid
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.task import Clock as FakeReactor

from homeserver.auth.openid import MAX_TOKENS_PER_USER, TOKEN_LIFETIME_MS, OpenIdTokens
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.storage.database import Database
from homeserver.storage.openid_tokens import OpenIdTokenStore

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


def tokens_and_reactor(db: Database) -> tuple[OpenIdTokens, FakeReactor]:
    reactor = FakeReactor()
    tokens = OpenIdTokens(
        server_name="example.org", clock=Clock(reactor), store=OpenIdTokenStore(db)
    )
    return tokens, reactor


@pytest_twisted.ensureDeferred
async def test_a_token_names_its_user_until_it_expires(db: Database) -> None:
    tokens, reactor = tokens_and_reactor(db)
    token = await tokens.issue(ALICE, ALICE)
    assert token.to_json() == {
        "access_token": token.access_token,
        "token_type": "Bearer",
        "matrix_server_name": "example.org",
        "expires_in": TOKEN_LIFETIME_MS // 1000,
    }
    assert await tokens.user_of(token.access_token) == ALICE
    reactor.advance(TOKEN_LIFETIME_MS / 1000 - 1)
    assert await tokens.user_of(token.access_token) == ALICE
    reactor.advance(1)
    assert await tokens.user_of(token.access_token) is None


@pytest_twisted.ensureDeferred
async def test_unknown_tokens_name_nobody_and_tokens_differ(db: Database) -> None:
    tokens, _ = tokens_and_reactor(db)
    first, second = await tokens.issue(ALICE, ALICE), await tokens.issue(ALICE, ALICE)
    assert first.access_token != second.access_token
    assert await tokens.user_of("made-up") is None
    assert await tokens.user_of("") is None


@pytest_twisted.ensureDeferred
async def test_a_token_for_another_user_is_refused(db: Database) -> None:
    tokens, _ = tokens_and_reactor(db)
    with pytest.raises(MatrixError) as refused:
        await tokens.issue(ALICE, BOB)
    assert refused.value.status == 403


@pytest_twisted.ensureDeferred
async def test_a_token_is_known_to_another_instance_sharing_the_database(db: Database) -> None:
    issuer, _ = tokens_and_reactor(db)
    token = await issuer.issue(ALICE, ALICE)
    other, _ = tokens_and_reactor(db)
    assert await other.user_of(token.access_token) == ALICE


@pytest_twisted.ensureDeferred
async def test_a_user_holds_at_most_a_few_tokens_the_oldest_go_first(db: Database) -> None:
    tokens, reactor = tokens_and_reactor(db)
    bobs = await tokens.issue(BOB, BOB)
    issued = []
    for _ in range(MAX_TOKENS_PER_USER + 2):
        issued.append(await tokens.issue(ALICE, ALICE))
        reactor.advance(1)
    assert [await tokens.user_of(t.access_token) for t in issued[:2]] == [None, None]
    for token in issued[2:]:
        assert await tokens.user_of(token.access_token) == ALICE
    assert await tokens.user_of(bobs.access_token) == BOB
    rows = await db.execute("count", "SELECT COUNT(*) FROM openid_tokens WHERE user_id = ?", ALICE)
    assert int(rows[0][0]) == MAX_TOKENS_PER_USER


@pytest_twisted.ensureDeferred
async def test_expired_tokens_are_swept_from_the_database(db: Database) -> None:
    tokens, reactor = tokens_and_reactor(db)
    await tokens.issue(ALICE, ALICE)
    reactor.advance(TOKEN_LIFETIME_MS / 1000 + 1)
    await tokens.issue(BOB, BOB)
    rows = await db.execute("all", "SELECT user_id FROM openid_tokens")
    assert [row[0] for row in rows] == [BOB]
