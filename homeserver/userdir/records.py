"""What the user directory handler and its store pass each other (imports nothing
else of ours, so the store can re-export it)."""

from __future__ import annotations

import attrs


@attrs.frozen
class DirectoryEntry:
    """One user's row, with the normalised text it is found by."""

    user_id: str
    display_name: str | None
    avatar_url: str | None
    is_local: bool
    #: Normalised display name ("" without one): exact and prefix ranking.
    name_key: str
    #: Normalised localpart: exact and prefix ranking.
    localpart_key: str
    #: Normalised display name and localpart: what substrings are looked for in
    #: (not the server name: every local user would match a part of it).
    search_text: str
    #: Normalised user ID: matched whole or as a prefix.
    user_id_key: str
    #: Words of the display name and localpart: short prefixes and typos.
    words: tuple[str, ...]


@attrs.frozen
class LocalProfile:
    """A local account as the directory indexes it (read from accounts and profiles)."""

    user_id: str
    display_name: str | None
    avatar_url: str | None
    created_ts: int


@attrs.frozen
class SearchPlan:
    """One directory query.  Every condition must hold for a user to match."""

    searcher: str
    #: Each must occur in the user's ``search_text`` (three characters or more).
    substrings: tuple[str, ...]
    #: Each must begin one of the user's words (shorter query words, and words
    #: without three letters or digits in a row, which have no trigram).
    prefixes: tuple[str, ...]
    #: Each must begin the user's normalised user ID (query words starting with "@").
    user_id_prefixes: tuple[str, ...] = ()
    #: For the typo pass: per query word, the indexed words it is close to; the user
    #: must contain the query word or have one of these words.  Empty: no typo pass.
    near_words: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: The whole normalised query and its localpart reading, for exact/prefix ranks.
    whole: str = ""
    whole_localpart: str = ""
    #: Every user in the directory, not only those sharing a room or in a public room.
    search_all_users: bool = False
    local_only: bool = False
    prefer_local: bool = False
    #: Users already found by an earlier pass.
    exclude: tuple[str, ...] = ()
    limit: int = 10


@attrs.frozen
class DirectoryHit:
    user_id: str
    display_name: str | None
    avatar_url: str | None
