"""Queries between servers: profiles, aliases, published room directories, space
hierarchies, OpenID user info and media.  The asking side (``profiles``,
``directory``, ``hierarchy``, ``media``) implements the ``Protocol`` each
homeserver handler names; the serving side is ``federation/servlets/queries.py``
and ``federation/servlets/media.py``.

spec: server-server-api.md#querying-for-information, #published-room-directory,
#spaces, #openid, #content-repository
"""
