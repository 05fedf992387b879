"""What other servers may ask of our users' keys (all for local users only):

- ``GET /user/devices/{userId}``: the user's devices with their keys, the
  ``stream_id`` of the user's ``m.device_list_update`` sequence the list is at, and
  their master and self-signing keys;
- ``POST /user/keys/query``: device and cross-signing keys, as ``/keys/query``
  answers a local client, minus what only a local requester may see;
- ``POST /user/keys/claim``: one-time keys (else fallback keys), each handed out at
  most once, through the same store transaction as local claims.

Device display names are not shared with other servers (Synapse's default,
``allow_device_name_lookup_over_federation: false``): they often name a person's
phone or laptop, which room-mates on other servers need not know.

spec: server-server-api.md#device-management (data/api/server-server/user_devices.yaml),
#end-to-end-encryption (user_keys.yaml)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from federation.e2ee.announcer import NOBODY, LocalKeys, public_keys
from federation.identifiers import is_user_of, server_of
from homeserver import errors
from homeserver.identifiers import is_valid_user_id

#: Local users one query or claim answers, devices a claim claims in total: past
#: them the rest is left out (the request body is bounded by the listener).
MAX_USERS = 1000
MAX_DEVICES = 10_000


class LocalClaims(Protocol):
    """``DeviceKeysHandler.claim_local``."""

    async def claim_local(
        self, one_time_keys: Mapping[str, Mapping[str, str]]
    ) -> dict[str, Any]: ...


class KeysAndClaims(LocalKeys, LocalClaims, Protocol):
    """``DeviceKeysHandler``: local keys and claims."""


class StreamIds(Protocol):
    """``DeviceListOutboundStore.current_stream_id``."""

    async def current_stream_id(self, user_id: str) -> int: ...


class UserKeysServing:
    def __init__(self, *, server_name: str, keys: KeysAndClaims, stream_ids: StreamIds) -> None:
        self._server_name = server_name
        self._keys = keys
        self._stream_ids = stream_ids

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        """``GET /user/devices/{userId}``: 400 for a user of another server."""
        if not is_valid_user_id(user_id) or server_of(user_id) != self._server_name:
            raise errors.invalid_param("The user is not hosted on this server")
        # The stream_id first: a change after it is in the list and will be announced
        # again (applying it twice is harmless); read after, a change in the list
        # could be one the stream_id already counts, never announced again.
        stream_id = await self._stream_ids.current_stream_id(user_id)
        devices, signing = await public_keys(self._keys, user_id)
        body: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": stream_id,
            "devices": [
                {"device_id": device_id, "keys": keys}
                for device_id, keys in sorted(devices.items())
            ],
        }
        if "master" in signing:
            body["master_key"] = signing["master"]
        if "self_signing" in signing:
            body["self_signing_key"] = signing["self_signing"]
        return body

    async def query(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /user/keys/query``; users of other servers are left out."""
        wanted = body.get("device_keys")
        if not isinstance(wanted, dict):
            raise errors.bad_json("'device_keys' must be an object")
        local: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise errors.bad_json(f"'device_keys.{user_id}' must be a list of device IDs")
            # Past the cap the rest is left unanswered (the asker lists them as
            # failed or asks again): a large room's query is never refused whole.
            if is_user_of(user_id, self._server_name) and len(local) < MAX_USERS:
                local[user_id] = device_ids
        answer = await self._keys.query_local(NOBODY, local)
        for devices in answer["device_keys"].values():
            for keys in devices.values():
                keys.pop("unsigned", None)
        return {
            "device_keys": answer["device_keys"],
            "master_keys": answer.get("master_keys", {}),
            "self_signing_keys": answer.get("self_signing_keys", {}),
        }

    async def claim(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /user/keys/claim``; users of other servers are left out."""
        wanted = body.get("one_time_keys")
        if not isinstance(wanted, dict):
            raise errors.bad_json("'one_time_keys' must be an object")
        local: dict[str, dict[str, str]] = {}
        count = 0
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(
                isinstance(a, str) for a in devices.values()
            ):
                raise errors.bad_json(f"'one_time_keys.{user_id}' must map devices to algorithms")
            if not is_user_of(user_id, self._server_name):
                continue
            # Past the caps the rest is left unclaimed, never the whole request refused.
            if len(local) >= MAX_USERS or count + len(devices) > MAX_DEVICES:
                continue
            count += len(devices)
            local[user_id] = devices
        answer = await self._keys.claim_local(local)
        return {"one_time_keys": answer["one_time_keys"]}
