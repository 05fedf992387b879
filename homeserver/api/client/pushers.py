"""``GET /pushers`` and ``POST /pushers/set``.

``POST /pushers/set`` is rate limited per user (``rc_pushers``, our own key; spec: the
endpoint "is rate-limited"): each pusher set makes the server post to a URL the client
chose.

spec: client-server-api/modules/push.md#client-behaviour, data/api/client-server/pusher.yaml
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.pushers.handler import (
    MAX_APP_ID_CHARS,
    MAX_PUSHKEY_BYTES,
    PusherSettings,
    PushersHandler,
)
from homeserver.ratelimit import RateLimiter

#: Required besides ``kind``, ``app_id`` and ``pushkey`` when ``kind`` is not null.
_REQUIRED_TO_SET = ("app_display_name", "device_display_name", "lang", "data")


def register(
    router: Router,
    authenticator: RequestAuthenticator,
    pushers: PushersHandler,
    limiter: RateLimiter,
) -> None:
    async def get_pushers(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, {"pushers": await pushers.get_pushers(requester.user_id)}

    async def set_pusher(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        limiter.ratelimit(requester.user_id)
        body = parse_json_object(request)
        missing = [key for key in ("kind", "app_id", "pushkey") if key not in body]
        if missing:
            raise errors.missing_param(", ".join(missing))
        app_id = _string(body, "app_id")
        pushkey = _string(body, "pushkey")
        if len(app_id) > MAX_APP_ID_CHARS:
            raise errors.invalid_param(f"'app_id' is longer than {MAX_APP_ID_CHARS} characters")
        if len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
            raise errors.invalid_param(f"'pushkey' is longer than {MAX_PUSHKEY_BYTES} bytes")
        if body["kind"] is None:
            await pushers.delete_pusher(requester.user_id, app_id, pushkey)
            return 200, {}
        missing = [key for key in _REQUIRED_TO_SET if body.get(key) is None]
        if missing:
            raise errors.missing_param(", ".join(missing))
        data = body["data"]
        if not isinstance(data, dict):
            raise errors.invalid_param("'data' must be an object")
        profile_tag = body.get("profile_tag")
        if profile_tag is not None and not isinstance(profile_tag, str):
            raise errors.invalid_param("'profile_tag' must be a string")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise errors.invalid_param("'append' must be true or false")
        settings = PusherSettings(
            kind=_string(body, "kind"),
            app_id=app_id,
            pushkey=pushkey,
            app_display_name=_string(body, "app_display_name", allow_empty=True),
            device_display_name=_string(body, "device_display_name", allow_empty=True),
            profile_tag=profile_tag,
            lang=_string(body, "lang", allow_empty=True),
            data=data,
            append=append,
        )
        await pushers.set_pusher(requester.user_id, requester.device_id, settings)
        return 200, {}

    for path in client_paths("/pushers"):
        router.register("GET", path, get_pushers)
    for path in client_paths("/pushers/set"):
        router.register("POST", path, set_pusher)


def _string(body: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    value = body[key]
    if not isinstance(value, str) or not (value or allow_empty):
        raise errors.invalid_param(f"'{key}' must be a {'' if allow_empty else 'non-empty '}string")
    return value
