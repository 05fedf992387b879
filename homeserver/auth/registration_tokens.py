"""Registration tokens: the UIA stage, the validity check and admin management.

spec: client-server-api/_index.md#token-authenticated-registration; the admin API
follows Synapse's ``/_synapse/admin/v1/registration_tokens`` so its tooling works.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from homeserver import errors
from homeserver.auth.uia import REGISTRATION_TOKEN, StageContext, UiaSession
from homeserver.clock import Clock
from homeserver.storage.registration_tokens import (
    UNCHANGED,
    RegistrationToken,
    RegistrationTokenExistsError,
    RegistrationTokenStore,
)

#: spec: tokens use the opaque identifier grammar, at most 64 characters.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_GENERATED_ALPHABET = string.ascii_letters + string.digits + "._~-"


def is_valid_token(token: str) -> bool:
    return _TOKEN_RE.fullmatch(token) is not None


class RegistrationTokenHandler:
    def __init__(self, clock: Clock, store: RegistrationTokenStore) -> None:
        self._clock = clock
        self._store = store

    async def is_valid(self, token: str) -> bool:
        if not is_valid_token(token):
            return False
        record = await self._store.get(token)
        return record is not None and record.is_valid(self._clock.time_msec())

    async def uia_stage(self, auth: dict[str, Any], context: StageContext) -> str:
        """``m.login.registration_token``: a valid token reserves one of its uses."""
        token = auth.get("token")
        if not isinstance(token, str):
            raise errors.bad_json("'auth.token' must be a string")
        if not is_valid_token(token) or not await self._store.take_pending_use(
            token, self._clock.time_msec()
        ):
            raise errors.forbidden("Invalid registration token")
        return token

    async def registration_finished(self, token: str) -> None:
        await self._store.complete_use(token)

    async def registration_abandoned(self, token: str) -> None:
        await self._store.release_pending_use(token)

    async def session_expired(self, session: UiaSession) -> None:
        token = session.results.get(REGISTRATION_TOKEN)
        if isinstance(token, str):
            await self.registration_abandoned(token)

    # --- admin API -------------------------------------------------------------------

    async def list_tokens(self, valid: bool | None) -> list[RegistrationToken]:
        now = self._clock.time_msec()
        tokens = await self._store.list_tokens()
        if valid is None:
            return tokens
        return [t for t in tokens if t.is_valid(now) == valid]

    async def get(self, token: str) -> RegistrationToken:
        record = await self._store.get(token)
        if record is None:
            raise errors.not_found(f"No such registration token: {token}")
        return record

    async def create(self, body: dict[str, Any]) -> RegistrationToken:
        token = body.get("token")
        if token is None:
            length = body.get("length", 16)
            if not _is_int(length) or not 1 <= length <= 64:
                raise errors.invalid_param("length must be an integer between 1 and 64")
            token = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(length))
        elif not isinstance(token, str) or not is_valid_token(token):
            raise errors.invalid_param(
                "token must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '~' and '-'"
            )
        uses_allowed = self._uses_allowed(body.get("uses_allowed"))
        expiry_time = self._expiry_time(body.get("expiry_time"))
        try:
            return await self._store.create(token, uses_allowed, expiry_time)
        except RegistrationTokenExistsError:
            raise errors.invalid_param(f"Token already exists: {token}") from None

    async def update(self, token: str, body: dict[str, Any]) -> RegistrationToken:
        changes: dict[str, Any] = {"uses_allowed": UNCHANGED, "expiry_time": UNCHANGED}
        if "uses_allowed" in body:
            changes["uses_allowed"] = self._uses_allowed(body["uses_allowed"])
        if "expiry_time" in body:
            changes["expiry_time"] = self._expiry_time(body["expiry_time"])
        record = await self._store.update(token, **changes)
        if record is None:
            raise errors.not_found(f"No such registration token: {token}")
        return record

    async def delete(self, token: str) -> None:
        if not await self._store.delete(token):
            raise errors.not_found(f"No such registration token: {token}")

    def _uses_allowed(self, value: Any) -> int | None:
        if value is None:
            return None
        if not _is_int(value) or value < 0:
            raise errors.invalid_param("uses_allowed must be a non-negative integer or null")
        return int(value)

    def _expiry_time(self, value: Any) -> int | None:
        if value is None:
            return None
        if not _is_int(value) or value < self._clock.time_msec():
            raise errors.invalid_param("expiry_time must be a time in the future, in ms, or null")
        return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def token_json(token: RegistrationToken) -> dict[str, Any]:
    return {
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_time,
    }
