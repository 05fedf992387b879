"""Profiles: ``/profile/{userId}`` and its ``displayname`` and ``avatar_url`` fields.

Reading needs no access token; changing needs the user's own.  Other profile keys
(spec v1.16 custom fields) are not stored: ``m.profile_fields`` says so, and
setting them is refused with 403.

spec: client-server-api/_index.md#profiles, #get_matrixclientv3profileuserid,
#put_matrixclientv3profileuseridkeyname
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, parse_optional_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.profile.fields import PROFILE_FIELDS, Profile
from homeserver.profile.handler import ProfileHandler


def profile_json(profile: Profile) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if profile.displayname is not None:
        body["displayname"] = profile.displayname
    if profile.avatar_url is not None:
        body["avatar_url"] = profile.avatar_url
    return body


def register(
    router: Router, *, authenticator: RequestAuthenticator, profiles: ProfileHandler
) -> None:
    async def get_profile(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        return 200, profile_json(await profiles.get_profile(user_id))

    async def get_field(request: MatrixRequest, user_id: str, key_name: str) -> tuple[int, Any]:
        body = profile_json(await profiles.get_profile(user_id))
        if key_name not in body:
            raise errors.not_found(f"The user has no {key_name!r} in their profile")
        return 200, {key_name: body[key_name]}

    async def put_field(request: MatrixRequest, user_id: str, key_name: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        _check_supported(key_name)
        if key_name not in body:
            raise errors.missing_param(key_name)
        value = body[key_name]
        if value is not None and not isinstance(value, str):
            raise errors.bad_json(f"{key_name!r} must be a string")
        await profiles.set_field(requester.user_id, requester.is_admin, user_id, key_name, value)
        return 200, {}

    async def delete_field(request: MatrixRequest, user_id: str, key_name: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        parse_optional_json_object(request)
        _check_supported(key_name)
        await profiles.set_field(requester.user_id, requester.is_admin, user_id, key_name, None)
        return 200, {}

    for path in client_paths("/profile/{user_id}"):
        router.register("GET", path, get_profile)
    for path in client_paths("/profile/{user_id}/{key_name}"):
        router.register("GET", path, get_field)
        router.register("PUT", path, put_field)
        router.register("DELETE", path, delete_field)


def _check_supported(key_name: str) -> None:
    if key_name not in PROFILE_FIELDS:
        raise errors.forbidden(f"The profile field {key_name!r} cannot be set on this server")
