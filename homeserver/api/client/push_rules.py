"""``/pushrules``: read and change the requester's push rules.

spec: client-server-api/modules/push.md#push-rules-api, data/api/client-server/pushrules.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.push.handler import PushRulesHandler

GLOBAL_SCOPE = "global"


def register(
    router: Router, *, authenticator: RequestAuthenticator, push_rules: PushRulesHandler
) -> None:
    async def get_all(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, (await push_rules.ruleset(requester.user_id)).to_json()

    async def get_global(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, (await push_rules.ruleset(requester.user_id)).to_json()[GLOBAL_SCOPE]

    async def get_rule(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, (await push_rules.get_rule(requester.user_id, kind, rule_id)).to_json()

    async def put_rule(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        await push_rules.put_rule(
            requester.user_id,
            kind,
            rule_id,
            body,
            before=query_str(request, "before"),
            after=query_str(request, "after"),
        )
        return 200, {}

    async def delete_rule(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        await push_rules.delete_rule(requester.user_id, kind, rule_id)
        return 200, {}

    async def get_enabled(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        rule = await push_rules.get_rule(requester.user_id, kind, rule_id)
        return 200, {"enabled": rule.enabled}

    async def put_enabled(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        enabled = parse_json_object(request).get("enabled")
        if not isinstance(enabled, bool):
            raise errors.bad_json("'enabled' must be true or false")
        await push_rules.set_enabled(requester.user_id, kind, rule_id, enabled)
        return 200, {}

    async def get_actions(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        rule = await push_rules.get_rule(requester.user_id, kind, rule_id)
        return 200, {"actions": list(rule.actions)}

    async def put_actions(request: MatrixRequest, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        if "actions" not in body:
            raise errors.missing_param("'actions' is required")
        await push_rules.set_actions(requester.user_id, kind, rule_id, body["actions"])
        return 200, {}

    for path in client_paths("/pushrules/"):
        router.register("GET", path, get_all)
    for path in client_paths("/pushrules/global/"):
        router.register("GET", path, get_global)
    for path in client_paths("/pushrules/global/{kind}/{rule_id}"):
        router.register("GET", path, get_rule)
        router.register("PUT", path, put_rule)
        router.register("DELETE", path, delete_rule)
    for path in client_paths("/pushrules/global/{kind}/{rule_id}/enabled"):
        router.register("GET", path, get_enabled)
        router.register("PUT", path, put_enabled)
    for path in client_paths("/pushrules/global/{kind}/{rule_id}/actions"):
        router.register("GET", path, get_actions)
        router.register("PUT", path, put_actions)
