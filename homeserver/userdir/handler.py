"""The user directory: searching it, and keeping local users in it (rules only).

Local users are indexed from their global profile: when their account is created
(``RegistrationHandler.on_registered``), when it changes
(``ProfileHandler.on_profile_change``), and removed at deactivation.  A catch-up
before each search and at start-up inserts accounts missing from the directory (a
failed ``on_registered``, accounts from before the directory existed).  Memberships
need no upkeep: who the searcher may see is decided when searching
(docs/user-directory.md).

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
"""

from __future__ import annotations

import logging

import attrs

from homeserver.clock import Clock
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.profile.fields import Profile
from homeserver.storage.user_directory import REGISTRATION_MARGIN_MS, UserDirectoryStore
from homeserver.userdir import text
from homeserver.userdir.records import DirectoryEntry, DirectoryHit, LocalProfile, SearchPlan
from homeserver.util import text_search

logger = logging.getLogger(__name__)

#: Accounts indexed per transaction when catching up.
_USERS_BATCH = 500
#: Indexed words compared with one misspelt query word, at most: those with its first
#: letter and a length within the typo allowance; past this many, those with its
#: first two letters (or its first and third: a second letter dropped or swapped),
#: then three, and so on.
NEAR_CANDIDATES = 2_000
#: Close words kept per misspelt query word (the closest).
_NEAR_WORDS = 50


@attrs.frozen
class SearchResults:
    results: list[DirectoryHit]
    limited: bool


def directory_entry(
    user_id: str, display_name: str | None, avatar_url: str | None, *, is_local: bool
) -> DirectoryEntry:
    name_key = text.normalise(display_name or "")
    localpart_key = text.normalise(text.localpart(user_id))
    return DirectoryEntry(
        user_id=user_id,
        display_name=display_name,
        avatar_url=avatar_url,
        is_local=is_local,
        name_key=name_key,
        localpart_key=localpart_key,
        search_text=f"{name_key} {localpart_key}".strip(),
        user_id_key=text.normalise(user_id),
        # The whole localpart too, so "j.sm" finds "@j.smith:..." as well as "sm" does.
        words=tuple(dict.fromkeys([localpart_key, *text.words(name_key, localpart_key)])),
    )


def local_entry(profile: LocalProfile) -> DirectoryEntry:
    return directory_entry(profile.user_id, profile.display_name, profile.avatar_url, is_local=True)


def has_trigram(word: str) -> bool:
    """Whether a query word can use the trigram index: three letters or digits in a
    row (PostgreSQL's ``pg_trgm`` takes trigrams from words only; ``a.b`` has none
    and would scan the whole index)."""
    return any(len(run) >= text.MIN_SUBSTRING_LENGTH for run in text_search.WORD.findall(word))


class UserDirectoryHandler:
    def __init__(
        self,
        *,
        server_name: str,
        config: UserDirectoryConfig,
        store: UserDirectoryStore,
        clock: Clock,
    ) -> None:
        self._server_name = server_name
        self._config = config
        self._store = store
        self._clock = clock
        self._stopped = False

    async def search(self, searcher: str, term: str, limit: int) -> SearchResults:
        """Users whose display name or user ID matches every word of ``term``: exact
        matches first, then prefixes, then substrings, then (to fill the page) names
        one or two typing mistakes away.  ``limited`` if more matched than ``limit``.

        Words with three letters or digits in a row match a substring of the display
        name or localpart; other words (``jo``, ``a.b``) the start of a word of the
        display name or localpart; words starting with ``@`` the start of the user
        ID.  Typos are tolerated in words of four characters or more, provided their
        first character is right.
        """
        words = text.query_words(term)
        if not self._config.enabled or not words:
            return SearchResults([], False)
        await self._index_new_users(batches=1)
        whole = " ".join(words)
        whole_localpart = text.localpart(whole) if whole.startswith("@") else whole
        base = SearchPlan(
            searcher=searcher,
            substrings=tuple(w for w in words if w[0] != "@" and has_trigram(w)),
            prefixes=tuple(w for w in words if w[0] != "@" and not has_trigram(w)),
            user_id_prefixes=tuple(w for w in words if w[0] == "@"),
            whole=whole,
            whole_localpart=whole_localpart,
            search_all_users=self._config.search_all_users,
            local_only=self._config.exclude_remote_users,
            prefer_local=self._config.prefer_local_users,
            limit=limit + 1,
        )
        found = await self._store.search(base)
        if len(found) <= limit:
            found += await self._search_near(base, exclude=[hit.user_id for hit in found])
        return SearchResults(found[:limit], len(found) > limit)

    async def _search_near(self, base: SearchPlan, exclude: list[str]) -> list[DirectoryHit]:
        """The typo pass: each long query word may instead be an indexed word within
        :func:`text.max_typos` edits of it."""
        near: list[tuple[str, tuple[str, ...]]] = []
        for word in base.substrings:
            allowed = text.max_typos(word)
            if not allowed:
                continue
            lengths = range(max(1, len(word) - allowed), len(word) + allowed + 1)
            candidates = await self._store.words_near([word[0]], lengths, NEAR_CANDIDATES + 1)
            # Too many: a longer prefix must be right (the typo comes later).
            known = 1
            while len(candidates) > NEAR_CANDIDATES and known < len(word) - 1:
                narrower = [word[: known + 1], word[:known] + word[known + 1]]
                candidates = await self._store.words_near(narrower, lengths, NEAR_CANDIDATES + 1)
                known += 1
            close = tuple(
                text.close_words(word, candidates[:NEAR_CANDIDATES], allowed, _NEAR_WORDS)
            )
            if close:
                near.append((word, close))
        if not near:
            return []
        fuzzy = {word for word, _ in near}
        plan = attrs.evolve(
            base,
            substrings=tuple(w for w in base.substrings if w not in fuzzy),
            near_words=tuple(near),
            exclude=tuple(exclude),
            limit=base.limit - len(exclude),
        )
        return await self._store.search(plan)

    # --- keeping local users indexed ---------------------------------------------------

    async def on_registered(self, user_id: str) -> None:
        """For ``RegistrationHandler.on_registered`` (called once the profile is
        written): indexed from the profile read in the same transaction."""
        await self._store.index_local_users([user_id], local_entry)

    async def on_profile_change(self, user_id: str, profile: Profile) -> None:
        """For ``ProfileHandler.on_profile_change``."""
        await self._store.upsert(
            [directory_entry(user_id, profile.displayname, profile.avatar_url, is_local=True)]
        )

    async def on_deactivate(self, user_id: str, erase: bool) -> None:
        """For ``AccountHandler.on_deactivate``: a deactivated user is never found."""
        await self._store.remove(user_id)

    def stop(self) -> None:
        """Stop indexing accounts after the current batch (at shutdown)."""
        self._stopped = True

    async def index_new_users(self) -> None:
        """Index every account not indexed yet (all of them on the first start)."""
        await self._index_new_users(batches=None)

    async def _index_new_users(self, batches: int | None) -> None:
        """The backstop: insert (never overwrite, so never undo a newer profile
        change) the accounts created since the last look and missing from the
        directory.  Each look covers the accounts since the previous one (less the
        margin), not every account."""
        started = self._clock.time_msec()
        done = 0
        while (batches is None or done < batches) and not self._stopped:
            profiles = await self._store.catch_up_local_users(_USERS_BATCH, started, local_entry)
            done += 1
            if len(profiles) < _USERS_BATCH:
                # Everything created before ``started`` (less the margin) is in.
                await self._store.advance_progress(started, min_step=REGISTRATION_MARGIN_MS)
                return
            await self._store.advance_progress(max(p.created_ts for p in profiles))
