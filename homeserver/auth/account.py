"""Account management: logout, password change, deactivation (rules only).

Deactivation runs ``on_deactivate`` callbacks (the rooms code registers one that
makes the user leave their rooms).

spec: client-server-api/_index.md#post_matrixclientv3logout, #post_matrixclientv3logoutall,
#post_matrixclientv3accountpassword, #post_matrixclientv3accountdeactivate
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from homeserver.auth.last_seen import LastSeenTracker
from homeserver.auth.passwords import PasswordHasher, check_new_password
from homeserver.auth.tokens import AccessTokenHandler, Requester
from homeserver.profile.handler import ProfileHandler
from homeserver.storage.devices import DeviceStore
from homeserver.storage.users import UserStore

logger = logging.getLogger(__name__)

#: Called with ``(user_id, erase)`` once an account is deactivated.
DeactivateCallback = Callable[[str, bool], Awaitable[None]]


class AccountHandler:
    def __init__(
        self,
        users: UserStore,
        devices: DeviceStore,
        tokens: AccessTokenHandler,
        hasher: PasswordHasher,
        profiles: ProfileHandler,
        last_seen: LastSeenTracker,
    ) -> None:
        self._users = users
        self._devices = devices
        self._tokens = tokens
        self._hasher = hasher
        self._profiles = profiles
        self._last_seen = last_seen
        self.on_deactivate: list[DeactivateCallback] = []

    @property
    def on_devices_changed(self) -> list[Callable[[str], Awaitable[None]]]:
        """Awaited with the user ID after any of the user's devices was renamed or
        deleted, through this handler or any other (the device store calls them)."""
        return self._devices.on_devices_changed

    async def logout(self, requester: Requester) -> None:
        """Revoke the requester's token and delete its device (with the device's tokens)."""
        if requester.device_id is None:
            await self._devices.delete_access_token(requester.access_token_id)
        else:
            await self._devices.delete_devices(requester.user_id, [requester.device_id])
        self._tokens.invalidate_user(requester.user_id)

    async def logout_all(self, user_id: str) -> None:
        """Delete every device and token of the user in one transaction."""
        await self._devices.delete_all_devices(user_id)
        self._tokens.invalidate_user(user_id)
        self._last_seen.forget_user(user_id)

    async def change_password(
        self, user_id: str, new_password: str, *, logout_devices: bool, keep: Requester | None
    ) -> None:
        """Set a new password; with ``logout_devices``, every other session is ended.

        ``keep`` is the session that made the change (if it had an access token): it
        stays logged in, everything else goes.
        """
        check_new_password(new_password)
        await self._users.set_password_hash(user_id, await self._hasher.hash(new_password))
        if logout_devices:
            if keep is not None and keep.device_id is not None:
                await self._devices.delete_all_devices(user_id, except_device_id=keep.device_id)
                await self._devices.delete_other_access_tokens(
                    user_id, keep.device_id, keep.access_token_id
                )
            else:
                await self._devices.delete_all_devices(user_id)
        self._tokens.invalidate_user(user_id)

    async def deactivate(self, user_id: str, *, erase: bool) -> None:
        """Deactivate: no password, no tokens, no devices; the ID stays taken forever."""
        await self._users.deactivate_user(user_id)
        await self._devices.delete_all_devices(user_id)
        self._tokens.invalidate_user(user_id)
        self._last_seen.forget_user(user_id)
        if erase:
            await self._profiles.clear_profile(user_id)
        for callback in self.on_deactivate:
            try:
                await callback(user_id, erase)
            except Exception:
                # The account is already deactivated; report the listener's failure only.
                logger.error("deactivation callback failed for %s", user_id, exc_info=True)
