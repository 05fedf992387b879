"""Creating accounts: the rules, no SQL and no HTTP.

spec: client-server-api/_index.md#account-registration-and-management
"""

from __future__ import annotations

from http import HTTPStatus

from homeserver.auth.passwords import PasswordHasher
from homeserver.clock import Clock
from homeserver.http.errors import Codes, MatrixError
from homeserver.identifiers import UserID, is_valid_user_localpart
from homeserver.storage.users import UserExistsError, UserStore


class RegistrationHandler:
    def __init__(
        self, server_name: str, clock: Clock, users: UserStore, hasher: PasswordHasher
    ) -> None:
        self._server_name = server_name
        self._clock = clock
        self._users = users
        self._hasher = hasher

    def user_id_for(self, localpart: str) -> str:
        """The full user ID for a new account's localpart, checked against the grammar."""
        if not is_valid_user_localpart(localpart):
            raise MatrixError(
                HTTPStatus.BAD_REQUEST,
                Codes.INVALID_USERNAME,
                "User ID may only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'",
            )
        user_id = UserID(localpart, self._server_name).to_string()
        if len(user_id.encode("utf-8")) > 255:
            raise MatrixError(HTTPStatus.BAD_REQUEST, Codes.INVALID_USERNAME, "User ID is too long")
        return user_id

    async def register_user(
        self,
        localpart: str,
        password: str | None,
        *,
        admin: bool = False,
        user_type: str | None = None,
    ) -> str:
        """Create an account; returns its user ID.  ``M_USER_IN_USE`` if taken."""
        user_id = self.user_id_for(localpart)
        password_hash = await self._hasher.hash(password) if password else None
        try:
            await self._users.create_user(
                user_id,
                password_hash=password_hash,
                created_ts=self._clock.time_msec(),
                is_admin=admin,
                user_type=user_type,
            )
        except UserExistsError:
            raise MatrixError(
                HTTPStatus.BAD_REQUEST, Codes.USER_IN_USE, "User ID already taken."
            ) from None
        return user_id
