"""/pushrules over HTTP: the resolved ruleset, changes to it, and their effects on
/sync (m.push_rules account data) and unread counts.

spec: client-server-api/modules/push.md#push-rules-api, #push-rules-events
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.api.client.test_rooms import create_room, send_text
from tests.api.client.test_sync import sync
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess

KINDS = ("override", "content", "room", "sender", "underride")


def rule_path(kind: str, rule_id: str, suffix: str = "") -> str:
    return f"/pushrules/global/{kind}/{quote(rule_id, safe='')}{suffix}"


def push_rules_event(body: dict[str, Any]) -> dict[str, Any] | None:
    for event in body["account_data"]["events"]:
        if event["type"] == "m.push_rules":
            content: dict[str, Any] = event["content"]
            return content
    return None


def test_a_new_user_has_the_spec_default_ruleset(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    everything = call(open_server, "GET", "/pushrules/", token=alice)
    assert everything.status == 200
    ruleset = everything.json()["global"]
    assert set(ruleset) == set(KINDS)
    overrides = [rule["rule_id"] for rule in ruleset["override"]]
    assert overrides[0] == ".m.rule.master"
    assert ruleset["override"][0]["enabled"] is False
    assert {".m.rule.suppress_notices", ".m.rule.is_user_mention"} <= set(overrides)
    assert all(rule["default"] for kind in KINDS for rule in ruleset[kind])
    assert call(open_server, "GET", "/pushrules/global/", token=alice).json() == ruleset
    # The same ruleset reaches clients as m.push_rules in the first /sync and through
    # the account data API.
    first = sync(open_server, alice)
    assert push_rules_event(first) == {"global": ruleset}
    # Only the first sync carries the unchanged rules; a long poll after it waits.
    later = sync(open_server, alice, f"?since={first['next_batch']}&timeout=300")
    assert push_rules_event(later) is None
    assert later["next_batch"] == first["next_batch"]
    stored = call(
        open_server, "GET", "/user/@alice:localhost/account_data/m.push_rules", token=alice
    )
    assert stored.json() == {"global": ruleset}
    refused = call(
        open_server,
        "PUT",
        "/user/@alice:localhost/account_data/m.push_rules",
        token=alice,
        body={"global": {}},
    )
    assert refused.status == 405


def test_muting_a_room_shows_in_sync_and_stops_its_unread_count(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    call(open_server, "POST", f"/join/{room_id}", token=bob, body={})
    since = sync(open_server, bob)["next_batch"]
    muted = call(open_server, "PUT", rule_path("room", room_id), token=bob, body={"actions": []})
    assert (muted.status, muted.json()) == (200, {})
    rule = call(open_server, "GET", rule_path("room", room_id), token=bob).json()
    assert rule == {"rule_id": room_id, "default": False, "enabled": True, "actions": []}
    send_text(open_server, alice, room_id, "nobody hears this", "t1")
    body = sync(open_server, bob, f"?since={since}")
    content = push_rules_event(body)
    assert content is not None
    assert [r["rule_id"] for r in content["global"]["room"]] == [room_id]
    counts = body["rooms"]["join"][room_id]["unread_notifications"]
    assert counts == {"highlight_count": 0, "notification_count": 0}
    # Unmuting brings counts back.
    deleted = call(open_server, "DELETE", rule_path("room", room_id), token=bob)
    assert deleted.status == 200
    counts = sync(open_server, bob)["rooms"]["join"][room_id]["unread_notifications"]
    assert counts["notification_count"] == 1


def test_default_rules_can_be_switched_and_given_actions(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    path = rule_path("override", ".m.rule.suppress_notices")
    assert call(open_server, "GET", path + "/enabled", token=alice).json() == {"enabled": True}
    assert (
        call(open_server, "PUT", path + "/enabled", token=alice, body={"enabled": False}).status
        == 200
    )
    assert call(open_server, "GET", path + "/enabled", token=alice).json() == {"enabled": False}
    actions = ["notify", {"set_tweak": "sound", "value": "default"}]
    assert (
        call(open_server, "PUT", path + "/actions", token=alice, body={"actions": actions}).status
        == 200
    )
    assert call(open_server, "GET", path + "/actions", token=alice).json() == {"actions": actions}
    rule = call(open_server, "GET", path, token=alice).json()
    assert (rule["default"], rule["enabled"], rule["actions"]) == (True, False, actions)


def test_user_rules_are_ordered_by_before_and_after(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]

    def put(rule_id: str, query: str = "") -> int:
        return call(
            open_server,
            "PUT",
            rule_path("content", rule_id) + query,
            token=alice,
            body={"pattern": rule_id, "actions": ["notify"]},
        ).status

    assert put("first") == 200
    assert put("second") == 200  # newest goes on top
    assert put("third", "?after=first") == 200
    assert put("zeroth", "?before=second") == 200
    content = call(open_server, "GET", "/pushrules/", token=alice).json()["global"]["content"]
    assert [r["rule_id"] for r in content if not r["default"]] == [
        "zeroth",
        "second",
        "first",
        "third",
    ]


def test_bad_push_rule_requests_get_matrix_errors(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    cases: list[tuple[str, str, Any, int, str]] = [
        ("GET", "/pushrules/global/bogus/x", None, 400, "M_INVALID_PARAM"),
        ("GET", rule_path("override", "nope"), None, 404, "M_NOT_FOUND"),
        ("DELETE", rule_path("override", "nope"), None, 404, "M_NOT_FOUND"),
        ("PUT", rule_path("override", ".m.rule.mine"), {"actions": [], "conditions": []}, 400, "M_INVALID_PARAM"),
        ("DELETE", rule_path("override", ".m.rule.master"), None, 400, "M_INVALID_PARAM"),
        ("PUT", rule_path("override", "x"), {"actions": "notify"}, 400, "M_BAD_JSON"),
        ("PUT", rule_path("override", "x"), {"actions": ["dance"]}, 400, "M_INVALID_PARAM"),
        ("PUT", rule_path("content", "x"), {"actions": []}, 400, "M_MISSING_PARAM"),
        ("PUT", rule_path("room", "not-a-room"), {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", rule_path("sender", "not-a-user"), {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", rule_path("content", "x") + "?before=missing", {"pattern": "x", "actions": []}, 400, "M_UNKNOWN"),
        ("PUT", rule_path("override", ".m.rule.master", "/enabled"), {"enabled": "yes"}, 400, "M_BAD_JSON"),
        ("PUT", rule_path("override", ".m.rule.master", "/actions"), {}, 400, "M_MISSING_PARAM"),
        ("PUT", rule_path("override", "nope", "/enabled"), {"enabled": True}, 404, "M_NOT_FOUND"),
        ("GET", "/pushrules/device/x/y", None, 404, "M_UNRECOGNIZED"),
    ]  # fmt: skip
    for method, path, body, status, errcode in cases:
        response = call(open_server, method, path, token=alice, body=body)
        assert (response.status, response.json().get("errcode")) == (status, errcode), (
            method,
            path,
            response.body,
        )
    # Nothing above changed the ruleset.
    ruleset = call(open_server, "GET", "/pushrules/", token=alice).json()["global"]
    assert all(rule["default"] for kind in KINDS for rule in ruleset[kind])
    assert call(open_server, "GET", "/pushrules/", token=None).status == 401
