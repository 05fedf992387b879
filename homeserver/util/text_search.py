"""What a word is, how text is folded, and how many typos a word tolerates: the one
set of rules shared by message search (``homeserver.search``) and the user directory
(``homeserver.userdir``), so both find "José" by "jose" the same way.

Pure functions, no I/O.

- :func:`fold`: case-folded, compatibility-decomposed, combining marks dropped, then
  recomposed (``Café`` → ``cafe``, ``Straße`` → ``strasse``, ``ｆｕｌｌ`` → ``full``;
  Hangul stays in syllables).
- A word is a run of letters, marks and digits (Unicode categories L, M, N); the rest
  separates words.  Python's ``\\w`` misses marks with no combining class (the vowel
  signs of Indic scripts), which would cut words apart, so the character class is
  built from the Unicode database, once, when this module is imported (~30 ms).
- :func:`max_edits`: none below four characters, one up to seven, two from eight;
  distances are optimal string alignment (a swap of neighbours is one edit), measured
  in C by ``rapidfuzz`` (:func:`close_words`).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence

from rapidfuzz import process
from rapidfuzz.distance import OSA

#: Words shorter than this get no typo tolerance (one edit of a three-letter word
#: matches too much to be useful).
MIN_FUZZY_LENGTH = 4
#: From this length, two edits.
TWO_EDITS_LENGTH = 8


def _build_word_pattern() -> re.Pattern[str]:
    """A run of L/M/N characters, over the planes that hold them (0-3, and 14's
    variation selectors)."""
    ranges: list[tuple[int, int]] = []
    for code in itertools.chain(range(0x40000), range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(code))[0] in "LMN":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    parts = "".join(
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in ranges
    )
    return re.compile(f"[{parts}]+")


#: Built at import, not on first use: the first search must not pay for it on the
#: reactor thread.
WORD = _build_word_pattern()


def fold(text: str) -> str:
    """Case-folded, without diacritics (casefold, NFKD, combining marks dropped, NFC)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    )


def surface_words(text: str) -> Iterator[str]:
    """The words of ``text`` as written (for highlights)."""
    for match in WORD.finditer(text):
        yield match.group()


def folded_words(text: str) -> Iterator[str]:
    """The folded words of ``text``, in order, repeats kept.  Folding can split a word
    (NFKD turns some ligatures and symbols into several characters), so each folded
    word is split again."""
    for surface in WORD.findall(text):
        yield from WORD.findall(fold(surface))


def max_edits(word: str) -> int:
    """Edits tolerated for a (folded) query word."""
    if len(word) < MIN_FUZZY_LENGTH:
        return 0
    return 1 if len(word) < TWO_EDITS_LENGTH else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance; any value above ``limit`` is reported as
    ``limit + 1``."""
    return int(OSA.distance(a, b, score_cutoff=limit))


def close_words(word: str, candidates: Sequence[str], limit: int) -> list[tuple[int, str]]:
    """(distance, candidate) for the ``candidates`` within ``limit`` edits of ``word``
    (other than itself), nearest first.  Compared in C with a cut-off: thousands of
    candidates take well under a millisecond."""
    matches = process.extract(word, candidates, scorer=OSA.distance, score_cutoff=limit, limit=None)
    return sorted((int(distance), choice) for choice, distance, _ in matches if choice != word)
