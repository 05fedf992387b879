"""The pusher kinds this server serves, by the ``kind`` name of ``POST /pushers/set``.

The assembly registers ``http`` and ``webpush`` (when enabled); another kind (``email``)
is added with :meth:`PusherKinds.register` before the engine starts.
"""

from __future__ import annotations

from homeserver.pushers.kinds import PusherKind


class PusherKinds:
    def __init__(self) -> None:
        self._kinds: dict[str, PusherKind] = {}
        self._with_badges: set[str] = set()

    def register(self, kind: PusherKind, *, badge_updates: bool = False) -> None:
        """``badge_updates``: the kind shows a badge, so its
        :meth:`~homeserver.pushers.kinds.PusherKind.badge_changed` is worth the
        unread count it takes (counted over all the user's rooms) when a user reads."""
        if kind.name in self._kinds:
            raise ValueError(f"pusher kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind
        if badge_updates:
            self._with_badges.add(kind.name)

    def get(self, name: str) -> PusherKind | None:
        return self._kinds.get(name)

    def sends_badge_updates(self, name: str) -> bool:
        return name in self._with_badges

    def names(self) -> list[str]:
        return sorted(self._kinds)
