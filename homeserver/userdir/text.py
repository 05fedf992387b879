"""How directory text is compared: normalisation, words, and the typo tolerance.

Pure functions, no I/O.  Both what is indexed and what is searched for go through
:func:`normalise`, so matching is case-insensitive and ignores accents on every
engine alike ("José" is found by "jose"; "STRASSE" by "straße").
The folding, the word rule and the typo tolerance are message search's too
(:mod:`homeserver.util.text_search`); this module keeps the directory's own use of them.

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch ("performed
case-insensitively on user IDs and display names")
"""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.util import text_search

#: A "word" for prefix and typo matching: letters, marks and digits, as message
#: search has it (so "john.smith" and "O'Brien" are two words each).
_WORD = text_search.WORD

#: Query words shorter than this cannot use the trigram index: they are matched as
#: the start of a word instead ("jo" finds "John", not "Majority").
MIN_SUBSTRING_LENGTH = 3
#: Query words shorter than this get no typo tolerance (shared with message search).
MIN_FUZZY_LENGTH = text_search.MIN_FUZZY_LENGTH
#: Words kept per user for prefix and typo matching (display names may hold 256
#: characters; the first words are the ones people type).
MAX_WORDS_PER_USER = 24
#: Words of a query that are used; the rest are ignored.
MAX_QUERY_WORDS = 8


def normalise(text: str) -> str:
    """Folded as message search folds (:func:`text_search.fold`: case, compatibility
    forms, accents), whitespace collapsed."""
    # NUL cannot be stored or searched for: a separator like any other.
    return " ".join(text_search.fold(text.replace("\x00", " ")).split())


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def words(*texts: str) -> list[str]:
    """The distinct words of already-normalised ``texts``, in order, at most
    :data:`MAX_WORDS_PER_USER`."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text):
            seen.setdefault(word, None)
    return list(seen)[:MAX_WORDS_PER_USER]


def query_words(term: str) -> list[str]:
    """The normalised words of a search term, split on whitespace only so a pasted
    user ID (``@john.smith:example.org``) stays one substring."""
    distinct: dict[str, None] = {}
    for word in normalise(term).split():
        distinct.setdefault(word, None)
    return list(distinct)[:MAX_QUERY_WORDS]


def max_typos(word: str) -> int:
    """Edits tolerated for a query word: none below :data:`MIN_FUZZY_LENGTH`
    characters, one up to seven, two from eight (:func:`text_search.max_edits`)."""
    return text_search.max_edits(word)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insertions, deletions, substitutions and
    swaps of neighbours, so "jonh" is one edit from "john"); any value above
    ``limit`` is reported as ``limit + 1``."""
    return text_search.edit_distance(a, b, limit)


def close_words(word: str, candidates: Sequence[str], limit: int, most: int) -> list[str]:
    """At most ``most`` of the ``candidates`` within ``limit`` edits of ``word`` (other
    than itself), closest first.  Compared in C: thousands of candidates take well
    under a millisecond."""
    return [choice for _, choice in text_search.close_words(word, candidates, limit)[:most]]
