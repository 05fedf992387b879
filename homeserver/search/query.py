"""From what the user typed to what the index is asked: words, prefixes, typos.

Each word of the search term must match (AND).  A word matches:
- itself, and every indexed word it begins (``encrypt`` finds ``encryption``), for
  words of three or more characters (shorter prefixes would match most of the
  vocabulary);
- when it looks misspelled — it is in no indexed event, or in at most
  :data:`RARE_DOCS` — the indexed words within a small edit distance
  (``text_search.max_edits``: none below four characters, one up to seven, two
  from eight; optimal string alignment, so a swap of neighbours is one edit) that
  are more common than it.  ``messgae`` finds ``message``; ``form``, a word the
  index holds, is never "corrected" into ``from``.  At most :data:`MAX_FUZZY_WORDS`
  words of a search are looked up so.

Candidates for a typo come from the vocabulary (``search_terms``), two ways: terms
sharing the most trigrams with the word (SQLite FTS5 ``trigram`` / PostgreSQL
``pg_trgm``, at most :data:`TRIGRAM_CANDIDATES`), which finds long words whatever
letter is wrong; and the most common terms beginning with the word's first
letter (or with its first two letters swapped) with a length in reach (at most
:data:`SAME_START_CANDIDATES`, most common first, from two ranges of the term
index), which finds short words, whose typos leave few trigrams in common.
``rapidfuzz`` then keeps those within the edit distance, in C with a cut-off.
"""

from __future__ import annotations

import attrs
from twisted.internet import defer

from homeserver.search import text
from homeserver.storage.search import SearchStore, TermGroup
from homeserver.util.text_search import close_words, max_edits

#: Words of the search term beyond these are ignored (each one is a join in the index).
MAX_WORDS = 16
#: Words of one search that get typo alternatives (two vocabulary reads each).
MAX_FUZZY_WORDS = 4
#: Prefix matching from this length (``a*`` would match a large part of the index).
MIN_PREFIX_LENGTH = 3
#: A word in at most this many indexed events may be a typo (one typo of a common
#: word gets into an event or two; a real word is in more).
RARE_DOCS = 1
#: Typo alternatives kept per word, nearest and most common first.
MAX_ALTERNATIVES = 8
TRIGRAM_CANDIDATES = 100
SAME_START_CANDIDATES = 500


@attrs.frozen
class ParsedQuery:
    groups: tuple[TermGroup, ...]
    #: The folded words typed, for highlighting when no result shows them.
    words: tuple[str, ...]

    def matches(self, word: str) -> bool:
        """Whether a folded word of a result is one this query matched."""
        return any(
            word in group.exact or (group.prefix is not None and word.startswith(group.prefix))
            for group in self.groups
        )


class QueryParser:
    def __init__(self, store: SearchStore) -> None:
        self._store = store

    async def parse(self, search_term: str) -> ParsedQuery:
        """The term groups for ``search_term`` (empty if it has no words)."""
        words = list(dict.fromkeys(text.words(search_term)))[:MAX_WORDS]
        known = await self._store.term_counts(words)
        fuzzy = [w for w in words if max_edits(w) and known.get(w, 0) <= RARE_DOCS]
        fuzzy = fuzzy[:MAX_FUZZY_WORDS]
        # The words' lookups run side by side (each two reads of the vocabulary).
        found = await defer.gatherResults(
            [defer.ensureDeferred(self._typo_alternatives(w, known.get(w, 0))) for w in fuzzy],
            consumeErrors=True,
        )
        by_word = dict(zip(fuzzy, found, strict=True))
        groups = []
        for word in words:
            alternatives = by_word.get(word, [])
            prefix = word if len(word) >= MIN_PREFIX_LENGTH else None
            exact = (word,) if prefix is None else ()
            # A prefix already covers alternatives that begin with the word.
            extra = tuple(t for t in alternatives if prefix is None or not t.startswith(prefix))
            groups.append(TermGroup(prefix=prefix, exact=exact + extra))
        return ParsedQuery(tuple(groups), tuple(words))

    async def _typo_alternatives(self, word: str, word_docs: int) -> list[str]:
        edits = max_edits(word)
        by_trigrams, by_start = await defer.gatherResults(
            [
                defer.ensureDeferred(self._store.terms_sharing_trigrams(word, TRIGRAM_CANDIDATES)),
                defer.ensureDeferred(
                    self._store.terms_starting_like(
                        {word[0], word[1] + word[0]},
                        len(word) - edits,
                        len(word) + edits,
                        SAME_START_CANDIDATES,
                    )
                ),
            ],
            consumeErrors=True,
        )
        candidates = {**by_trigrams, **by_start}
        common = [term for term, docs in candidates.items() if docs > word_docs]
        near = [
            (distance, -candidates[term], term)
            for distance, term in close_words(word, common, edits)
        ]
        return [term for _, _, term in sorted(near)[:MAX_ALTERNATIVES]]
