"""Words of searchable text, the same way for indexing, querying and highlighting.

The rules (what a word is, folding) are the ones the user directory uses too
(:mod:`homeserver.util.text_search`).  Both engines are handed the words this
module makes — SQLite's FTS5 as space-separated text (its ``ascii`` tokenizer only
splits on the spaces), PostgreSQL as a ``tsvector`` literal — so their own
tokenizers never decide what a word is and the vocabulary (``search_terms``) always
names exactly what the index holds.

Limits (docs/search.md): scripts written without spaces (Chinese, Japanese, Thai)
give one "word" per run of text, found by its beginning only (prefix search).
"""

from __future__ import annotations

from homeserver.util.text_search import fold, folded_words, surface_words

__all__ = ["MAX_WORD_LENGTH", "MAX_WORDS_PER_EVENT", "fold", "surface_words", "words"]

#: Longer runs are not words anyone searches for (hashes, base64); they are left
#: out of the index, which also keeps every term within PostgreSQL's lexeme limit.
MAX_WORD_LENGTH = 64
#: Words of one event that are indexed (PostgreSQL positions stop at 16,383; a
#: message is at most 64 KiB anyway): the same on both engines, so the vocabulary
#: counts exactly what the index holds.
MAX_WORDS_PER_EVENT = 16383


def words(text: str) -> list[str]:
    """The indexed words of ``text``, in order, repeats kept (ranking counts them)."""
    found = []
    for word in folded_words(text):
        if len(word) <= MAX_WORD_LENGTH:
            found.append(word)
            if len(found) == MAX_WORDS_PER_EVENT:
                break
    return found
