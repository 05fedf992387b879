"""Checking a user's password, for login and for the UIA ``m.login.password`` stage.

Failures are answered with the same 403 whether the account exists or not, and
repeated failures for one account are rate limited (``rc_login.failed_attempts``).

spec: client-server-api/_index.md#password-based, #identifier-types
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from homeserver import errors
from homeserver.auth.passwords import MAX_PASSWORD_BYTES, PasswordHasher, PasswordVerdict
from homeserver.auth.uia import DUMMY, PASSWORD, Flows, StageContext, StageRefused
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID
from homeserver.ratelimit import RateLimiter
from homeserver.storage.users import UserStore

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = "Invalid username or password"


def user_from_identifier(body: dict[str, Any]) -> str:
    """The user named by ``identifier`` (``m.id.user``) or the legacy top-level ``user``.

    Third-party identifiers are refused with 403: this server binds no 3PIDs, and the
    spec answers unknown 3PIDs with 403.
    """
    identifier = body.get("identifier")
    if identifier is None:
        if "medium" in body or "address" in body:
            raise errors.forbidden("Third-party identifiers are not supported on this server")
        user = body.get("user")
        if user is None:
            raise errors.missing_param("identifier")
        if not isinstance(user, str):
            raise errors.bad_json("'user' must be a string")
        return user
    if not isinstance(identifier, dict):
        raise errors.bad_json("'identifier' must be an object")
    kind = identifier.get("type")
    if kind == "m.id.user":
        user = identifier.get("user")
        if not isinstance(user, str):
            raise errors.bad_json("'identifier.user' must be a string")
        return user
    if kind in ("m.id.thirdparty", "m.id.phone"):
        raise errors.forbidden("Third-party identifiers are not supported on this server")
    raise MatrixError(HTTPStatus.BAD_REQUEST, Codes.UNKNOWN, "Unknown login identifier type")


class PasswordAuthenticator:
    def __init__(
        self,
        server_name: str,
        users: UserStore,
        hasher: PasswordHasher,
        failed_attempts: RateLimiter,
        *,
        password_login_enabled: bool = True,
    ) -> None:
        self._server_name = server_name
        self.password_login_enabled = password_login_enabled
        self._users = users
        self._hasher = hasher
        self._failed_attempts = failed_attempts
        self._dummy_hash: str | None = None

    def qualify(self, user: str) -> str:
        """A full user ID for ``user`` (a localpart or a user ID), lowercased localpart
        accepted later by the case-insensitive lookup."""
        if user.startswith("@"):
            return user
        return f"@{user}:{self._server_name}"

    async def resolve_user(self, user: str) -> str | None:
        """The stored user ID ``user`` refers to on this server, or None."""
        user_id = self.qualify(user)
        try:
            if UserID.parse(user_id).domain != self._server_name:
                return None
        except ValueError:
            return None
        return await self._users.find_user_case_insensitive(user_id)

    async def check_password(self, user: str, password: str) -> str:
        """The user ID whose password this is; 403 ``M_FORBIDDEN`` otherwise.

        A deactivated account answers 403 ``M_USER_DEACTIVATED`` (its password is gone).
        """
        user_id = await self.resolve_user(user)
        limiter_key = user_id or self.qualify(user).lower()
        # Refuse early while this account is locked out for guessing.
        if self._failed_attempts.check(limiter_key, update=False) > 0:
            self._failed_attempts.ratelimit(limiter_key)
        record = None if user_id is None else await self._users.get_user(user_id)
        if record is not None and record.deactivated:
            raise MatrixError(
                HTTPStatus.FORBIDDEN, Codes.USER_DEACTIVATED, "This account has been deactivated"
            )
        if record is None or record.password_hash is None:
            # Verify anyway, so the response time does not tell whether the account exists.
            if self._dummy_hash is None:
                self._dummy_hash = await self._hasher.hash("not a password")
            await self._hasher.check(password, self._dummy_hash)
            self._failed_attempts.check(limiter_key)
            raise errors.forbidden(BAD_CREDENTIALS)
        verdict = (
            PasswordVerdict.WRONG
            if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES
            else await self._hasher.check(password, record.password_hash)
        )
        if not verdict.is_right:
            self._failed_attempts.check(limiter_key)
            raise errors.forbidden(BAD_CREDENTIALS)
        if verdict is PasswordVerdict.RIGHT_NEEDS_REHASH:
            await self._rehash(record.user_id, password, record.password_hash)
        return record.user_id

    async def _rehash(self, user_id: str, password: str, old_hash: str) -> None:
        """Upgrade a bcrypt (or weaker argon2) hash now that we know the password."""
        new_hash = await self._hasher.hash(password)
        # Compare-and-set: a password change racing this login must win.
        if await self._users.replace_password_hash(user_id, old_hash, new_hash):
            logger.info("upgraded the password hash of %s to argon2id", user_id)

    async def uia_flows(self, user_id: str) -> Flows:
        """The UIA flows for an account action by ``user_id``: re-enter the password.

        An account without a usable password (created without one, or with password
        login disabled) has nothing to re-enter, so it gets a dummy stage; its access
        token is then the only proof, as it is for every other request.
        """
        record = await self._users.get_user(user_id)
        if self.password_login_enabled and record is not None and record.password_hash:
            return [[PASSWORD]]
        return [[DUMMY]]

    async def uia_stage(self, auth: dict[str, Any], context: StageContext) -> str:
        """The UIA ``m.login.password`` stage; the requester must be the user named."""
        user = user_from_identifier(auth)
        password = auth.get("password")
        if not isinstance(password, str):
            raise errors.bad_json("'auth.password' must be a string")
        user_id = await self.check_password(user, password)
        if context.requester_user_id is not None and user_id != context.requester_user_id:
            raise StageRefused("The password is for a different user than the requester")
        return user_id
