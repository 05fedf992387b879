"""Profiles: display names and avatars of local users (rules only).

Changes are announced to ``on_profile_change`` callbacks, which the rooms code uses
to update the user's membership events.  Profiles of other servers' users come
through a :class:`RemoteProfiles` (federation's ``/query/profile``), once federation
has handed one over (:meth:`ProfileHandler.use_remote_profiles`).

spec: client-server-api/_index.md#profiles
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from homeserver import errors
from homeserver.identifiers import UserID
from homeserver.profile.fields import Profile
from homeserver.storage.profiles import ProfileStore
from homeserver.storage.users import UserStore

logger = logging.getLogger(__name__)

#: Longest display name accepted, in characters (the limit Synapse applies too).
MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000

ProfileChangeCallback = Callable[[str, Profile], Awaitable[None]]


class RemoteProfiles(Protocol):
    """Profiles of users on other servers (federation/queries: ``/query/profile``)."""

    async def get_remote_profile(self, user_id: str) -> Profile:
        """Raises :class:`~homeserver.errors.MatrixError`: 404 ``M_NOT_FOUND`` when
        the user's server knows no such user, 502 when it cannot be asked."""


class ProfileHandler:
    def __init__(self, server_name: str, users: UserStore, profiles: ProfileStore) -> None:
        self._server_name = server_name
        self._users = users
        self._profiles = profiles
        #: Called with ``(user_id, new_profile)`` after every change.
        self.on_profile_change: list[ProfileChangeCallback] = []
        #: Other servers' users' profiles; None: this server does not federate.
        self._remote: RemoteProfiles | None = None

    def use_remote_profiles(self, remote: RemoteProfiles) -> None:
        """Answer for users of other servers through ``remote`` (federation is built
        after the homeserver's handlers: federation/assembly.py calls this)."""
        self._remote = remote

    async def get_profile(self, user_id: str) -> Profile:
        """A user's profile; 404 ``M_NOT_FOUND`` for unknown users (and for remote
        ones while this server does not federate)."""
        if not self._is_local(user_id):
            if self._remote is None:
                raise errors.not_found("Profile not found")
            return await self._remote.get_remote_profile(user_id)
        return await self.get_local_profile(user_id)

    async def get_local_profile(self, user_id: str) -> Profile:
        """A local user's profile (also what other servers are told); 404
        ``M_NOT_FOUND`` for unknown and remote users."""
        if not self._is_local(user_id):
            raise errors.not_found("Profile not found")
        user = await self._users.get_user(user_id)
        if user is None:
            raise errors.not_found("Profile not found")
        return await self._profiles.get_profile(user_id) or Profile()

    async def member_content(self, user_id: str) -> dict[str, str]:
        """The profile fields for ``user_id``'s member events; none for users we
        hold no profile of (remote, unknown)."""
        try:
            return (await self.get_local_profile(user_id)).member_content()
        except errors.MatrixError:
            return {}

    async def set_field(
        self, requester_user_id: str, is_admin: bool, user_id: str, field: str, value: str | None
    ) -> None:
        """Set (or with None, remove) ``displayname`` or ``avatar_url``."""
        if user_id != requester_user_id and not is_admin:
            raise errors.forbidden("You may only change your own profile")
        await self.get_local_profile(user_id)  # 404 for users that do not exist here
        if field == "displayname" and value is not None and len(value) > MAX_DISPLAYNAME_LENGTH:
            raise errors.invalid_param(
                f"Display name is longer than {MAX_DISPLAYNAME_LENGTH} characters"
            )
        if field == "avatar_url" and value is not None:
            if len(value) > MAX_AVATAR_URL_LENGTH:
                raise errors.invalid_param("avatar_url is too long")
            # spec (v1.16): the value MUST be an MXC URI; "" clears it.
            if value and not value.startswith("mxc://"):
                raise errors.invalid_param("avatar_url must be an mxc:// URI")
        profile = await self._profiles.set_field(user_id, field, value or None)
        await self._notify(user_id, profile)

    def _is_local(self, user_id: str) -> bool:
        try:
            return UserID.parse(user_id).domain == self._server_name
        except ValueError:
            raise errors.invalid_param("Invalid user ID") from None

    async def clear_profile(self, user_id: str) -> None:
        await self._profiles.clear_profile(user_id)
        await self._notify(user_id, Profile())

    async def _notify(self, user_id: str, profile: Profile) -> None:
        for callback in self.on_profile_change:
            try:
                await callback(user_id, profile)
            except Exception:
                # The profile is saved; a failing listener must not turn that into an error.
                logger.error("profile change callback failed for %s", user_id, exc_info=True)
