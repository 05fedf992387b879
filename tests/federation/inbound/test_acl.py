"""Server ACLs: the spec's rules on server names, and a room's current ACL."""

from __future__ import annotations

import pytest
import pytest_twisted

from federation.acl import CompiledAcl, ServerAcl
from homeserver.errors import MatrixError
from tests.federation.inbound.conftest import FederatedRoom


@pytest.mark.parametrize(
    ("content", "server", "allowed"),
    [
        ({"allow": ["*"]}, "anything.example", True),
        ({}, "anything.example", False),  # no allow list: nobody
        ({"allow": "*"}, "anything.example", False),  # not a list: empty
        ({"allow": ["*"], "deny": ["evil.com"]}, "evil.com", False),
        ({"allow": ["*"], "deny": ["evil.com"]}, "evil.com:8448", False),  # ports ignored
        ({"allow": ["*"], "deny": ["EVIL.com"]}, "evil.COM", False),  # case-insensitive
        ({"allow": ["*"], "deny": ["*.evil.com"]}, "a.evil.com", False),
        ({"allow": ["*"], "deny": ["*.evil.com"]}, "evil.com", True),
        ({"allow": ["good.?rg"]}, "good.org", True),
        ({"allow": ["good.?rg"]}, "good.oorg", False),
        ({"allow": ["*"], "allow_ip_literals": False}, "1.2.3.4", False),
        ({"allow": ["*"], "allow_ip_literals": False}, "1.2.3.4:8448", False),
        ({"allow": ["*"], "allow_ip_literals": False}, "[::1]:8448", False),
        ({"allow": ["*"], "allow_ip_literals": "no"}, "1.2.3.4", True),  # not a bool: true
        ({"allow": ["*"]}, "[::1]", True),
        ({"allow": ["*"], "deny": [5, None]}, "x.org", True),  # non-strings ignored
    ],
)
def test_acl_rules(content: dict[str, object], server: str, allowed: bool) -> None:
    assert CompiledAcl.from_content(content).allows(server) is allowed


@pytest_twisted.ensureDeferred
async def test_room_acl_follows_the_current_state(room: FederatedRoom) -> None:
    acl = ServerAcl(events=room.events, state=room.state)
    assert await acl.allows("remote.test", room.room_id)  # no ACL: everyone
    await room.send_local("m.room.server_acl", {"allow": ["*"], "deny": ["remote.test"]}, "")
    assert not await acl.allows("remote.test", room.room_id)
    assert await acl.allows("other.test", room.room_id)
    with pytest.raises(MatrixError) as raised:
        await acl.check("remote.test:8448", room.room_id)
    assert (raised.value.status, raised.value.errcode) == (403, "M_FORBIDDEN")
    # Another state change keeps the ACL; a new ACL replaces it.
    await room.send_local("m.room.topic", {"topic": "t"}, "")
    assert not await acl.allows("remote.test", room.room_id)
    await room.send_local("m.room.server_acl", {"allow": ["*"]}, "")
    assert await acl.allows("remote.test", room.room_id)
    assert await acl.allows("remote.test", "!unknown:example.org")
