"""One notification email: the unread notifications of a pusher, grouped by room.

The mail counts every unread notification of the pusher's queue (the heading, the
subject, each room's "and N more") but shows at most :data:`MAX_ROOMS` rooms — those
with the newest notifications — and the last :data:`MAX_MESSAGES_PER_ROOM` of each.
Per room: its name (``m.room.name``, else its canonical alias, else the other
members' display names, else its ID), a link to it in the web client
(``email.client_base_url``, else matrix.to), and each shown message with its
sender's display name in the room and its text — encrypted events as "Encrypted
message", media as what was sent, never a file's content.  Names come from the
pushers' :class:`~homeserver.pushers.details.DetailsReader`, read only for what is
shown.  The subject follows Synapse's ``email.subjects`` keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import attrs

from homeserver.config.email import EmailConfig
from homeserver.events.event import Event
from homeserver.pushers.details import DetailsReader, NotificationDetails
from homeserver.pushers.email.render import DigestMessage, DigestRoom, multipart
from homeserver.pushers.kinds import PendingNotification
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.timeline import TimelineStore

MAX_MESSAGES_PER_ROOM = 5
MAX_ROOMS = 10
MAX_BODY_CHARACTERS = 500
_MEDIA = {
    "m.image": "sent an image",
    "m.file": "sent a file",
    "m.video": "sent a video",
    "m.audio": "sent an audio message",
    "m.location": "shared a location",
}


@attrs.frozen
class Unread:
    """One unread notification of the digest: the queue's entry and its event."""

    pending: PendingNotification
    event: Event


class DigestBuilder:
    def __init__(
        self,
        *,
        config: EmailConfig,
        state: RoomStateReader,
        timeline: TimelineStore,
        details: DetailsReader,
    ) -> None:
        self._config = config
        self._state = state
        self._timeline = timeline
        self._details = details

    async def build(
        self,
        *,
        user_id: str,
        address: str,
        unread: Sequence[Unread],
        unsubscribe_link: str,
    ) -> EmailMessage:
        """The mail for ``unread`` (at least one, oldest first)."""
        by_room: dict[str, list[Unread]] = {}
        for item in unread:
            by_room.setdefault(item.event.room_id, []).append(item)
        # The rooms with the newest notifications first.
        ordered = sorted(
            by_room.values(), key=lambda items: items[-1].pending.position, reverse=True
        )
        shown_rooms = ordered[:MAX_ROOMS]
        shown = [item for items in shown_rooms for item in items[-MAX_MESSAGES_PER_ROOM:]]
        details = await self._details.read([item.pending for item in shown])
        rooms: list[DigestRoom] = []
        named: list[bool] = []
        for items in shown_rooms:
            room_id = items[0].event.room_id
            messages = [
                _message(item.event, details.get(item.event.event_id))
                for item in items[-MAX_MESSAGES_PER_ROOM:]
            ]
            first = next(
                (details[i.event.event_id] for i in items if i.event.event_id in details), None
            )
            name, has_name = await self._room_name(room_id, user_id, first)
            named.append(has_name)
            rooms.append(
                DigestRoom(
                    name=name,
                    link=self._room_link(room_id),
                    messages=messages,
                    more=len(items) - len(messages),
                )
            )
        count = len(unread)
        senders = {item.event.sender for item in unread}
        subject = self._subject(rooms, named[0], len(by_room), len(senders) == 1, count)
        message = multipart(
            to=address,
            subject=subject,
            template="notification",
            heading=f"You have {count} unread {'notification' if count == 1 else 'notifications'}",
            rooms=rooms,
            more_rooms=len(ordered) - len(shown_rooms),
            address=address,
            user_id=user_id,
            app_name=self._config.app_name,
            unsubscribe_link=unsubscribe_link,
        )
        # RFC 2369 and RFC 8058: mail clients offer a one-click unsubscribe button.
        message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return message

    def _subject(
        self,
        rooms: Sequence[DigestRoom],
        named: bool,
        room_count: int,
        one_sender: bool,
        count: int,
    ) -> str:
        subjects = self._config.subjects
        first = rooms[0]
        values: dict[str, Any] = {"app": self._config.app_name, "room": first.name}
        # One sender: their name (every shown message is theirs); else the newest room's.
        values["person"] = first.messages[-1].sender if one_sender else first.messages[0].sender
        if room_count > 1:
            key = "messages_from_person_and_others" if one_sender else "messages_in_room_and_others"
        elif count == 1:
            key = "message_from_person_in_room" if named else "message_from_person"
        elif one_sender and not named:
            key = "messages_from_person"
        else:
            key = "messages_in_room"
        return subjects[key] % values

    def _room_link(self, room_id: str) -> str:
        quoted = quote(room_id, safe="!:")
        base = self._config.client_base_url
        return f"{base}/#/room/{quoted}" if base else f"https://matrix.to/#/{quoted}"

    async def _room_name(
        self, room_id: str, user_id: str, details: NotificationDetails | None
    ) -> tuple[str, bool]:
        """The room's name, and whether it has one of its own (a name or alias)."""
        if details is not None:
            for value in (details.room_name, details.room_alias):
                if value is not None and value.strip():
                    return value.strip(), True
        room = await self._state.room(room_id)
        if room is None:
            return room_id, False
        summary = (await self._timeline.get_room_summaries([room.room_nid], exclude_user=user_id))[
            room.room_nid
        ]
        if not summary.heroes:
            return room_id, False
        heroes = summary.heroes[:3]
        # The details reader names senders only; heroes need their member events.
        state = await self._state.current_state(room, [("m.room.member", h) for h in heroes])
        names = []
        for hero in heroes:
            member = state.get(("m.room.member", hero))
            name = member.content.get("displayname") if member is not None else None
            names.append(name.strip() if isinstance(name, str) and name.strip() else hero)
        return ", ".join(names), False


def _message(event: Event, details: NotificationDetails | None) -> DigestMessage:
    name = details.sender_display_name if details is not None else None
    sender = name.strip() if name is not None and name.strip() else event.sender
    return DigestMessage(
        sender=sender, time=_time(event.origin_server_ts), body=_body(event, sender)
    )


def _time(ts: int) -> str:
    return time.strftime("%d %b %H:%M UTC", time.gmtime(ts / 1000))


def _body(event: Event, sender_name: str) -> str:
    content = event.content if isinstance(event.content, dict) else {}
    if event.type == "m.room.encrypted":
        return "Encrypted message"
    if event.type == "m.room.member":
        return "Invited you to the room" if event.membership == "invite" else "Membership change"
    if event.type != "m.room.message":
        return "Sent an event"
    msgtype = content.get("msgtype")
    if msgtype in _MEDIA:
        return _MEDIA[str(msgtype)].capitalize()
    body = content.get("body")
    text = body if isinstance(body, str) else ""
    if msgtype == "m.emote":
        text = f"* {sender_name} {text}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_CHARACTERS else text[: MAX_BODY_CHARACTERS - 1] + "…"
