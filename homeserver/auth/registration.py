"""Creating accounts: the rules, no SQL and no HTTP.

spec: client-server-api/_index.md#account-registration-and-management
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from homeserver.auth.passwords import PasswordHasher, check_new_password
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID, is_valid_user_localpart
from homeserver.storage.profiles import ProfileStore
from homeserver.storage.users import UserExistsError, UserStore

#: Generated usernames are numeric; a few tries skip numbers an admin took by hand.
_GENERATE_ATTEMPTS = 10

logger = logging.getLogger(__name__)

#: Told the user ID of each new account, once its profile is written.
RegisteredCallback = Callable[[str], Awaitable[None]]


class RegistrationHandler:
    def __init__(
        self,
        server_name: str,
        clock: Clock,
        users: UserStore,
        hasher: PasswordHasher,
        profiles: ProfileStore | None = None,
    ) -> None:
        self._server_name = server_name
        self._clock = clock
        self._users = users
        self._hasher = hasher
        self._profiles = profiles
        self.on_registered: list[RegisteredCallback] = []

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
        guest: bool = False,
    ) -> str:
        """Create an account; returns its user ID.  ``M_USER_IN_USE`` if taken."""
        user_id = self.user_id_for(localpart)
        if password:
            check_new_password(password)
        password_hash = await self._hasher.hash(password) if password else None
        try:
            await self._users.create_user(
                user_id,
                password_hash=password_hash,
                created_ts=self._clock.time_msec(),
                is_admin=admin,
                user_type=user_type,
                is_guest=guest,
            )
        except UserExistsError:
            raise user_in_use() from None
        if self._profiles is not None:
            # The display name starts as the localpart, so members are never nameless.
            await self._profiles.create_profile(user_id, localpart)
        for callback in self.on_registered:
            try:
                await callback(user_id)
            except Exception:
                # The account exists; a failing listener must not turn that into an error.
                logger.error("registration callback failed for %s", user_id, exc_info=True)
        return user_id

    async def upgrade_guest(self, user_id: str, password: str | None) -> None:
        """Make a guest account an ordinary one, keeping its user ID, rooms and data.

        spec: client-server-api/modules/guest_access.md (upgrading with
        ``guest_access_token``)
        """
        if password:
            check_new_password(password)
        password_hash = await self._hasher.hash(password) if password else None
        if not await self._users.upgrade_guest(user_id, password_hash):
            # Upgraded (or deactivated) since the token was checked.
            raise MatrixError(
                HTTPStatus.FORBIDDEN, Codes.FORBIDDEN, "This account is not a guest account"
            )

    async def check_available(self, localpart: str) -> str:
        """The user ID for a chosen localpart, if valid and free; 400 otherwise.

        Numeric localparts are reserved for generated usernames.
        """
        user_id = self.user_id_for(localpart)
        if localpart.isdigit():
            raise MatrixError(
                HTTPStatus.BAD_REQUEST,
                Codes.INVALID_USERNAME,
                "Numeric user IDs are reserved for generated usernames",
            )
        if await self._users.get_user(user_id) is not None:
            raise user_in_use()
        return user_id

    async def generate_localpart(self) -> str:
        """A free numeric localpart, for clients that register without a username."""
        for _ in range(_GENERATE_ATTEMPTS):
            localpart = await self._users.next_generated_localpart()
            if await self._users.get_user(self.user_id_for(localpart)) is None:
                return localpart
        raise MatrixError(
            HTTPStatus.INTERNAL_SERVER_ERROR, Codes.UNKNOWN, "Could not generate a user ID"
        )


def user_in_use() -> MatrixError:
    return MatrixError(HTTPStatus.BAD_REQUEST, Codes.USER_IN_USE, "User ID already taken.")
