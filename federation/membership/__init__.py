"""Membership over federation: joins, leaves, knocks and invites, on both sides.

- ``serving.py`` answers other servers (``make_*``/``send_*``, ``invite``) for rooms
  this server is in; the servlets are ``federation/servlets/membership.py``.
- ``remote.py`` asks other servers, for local users changing their membership in
  rooms this server is not in, and for invites of their users
  (``homeserver.rooms.membership.RemoteMembership``).
- ``pdus.py`` holds what both share: checking a member event's shape,
  countersigning, the room state an invite or knock carries.

spec: server-server-api.md#joining-rooms, #knocking-rooms, #inviting-to-a-room,
#leaving-rooms-rejecting-invites
"""
