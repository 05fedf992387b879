"""What a word is, the same for the index, the query and the highlights."""

from __future__ import annotations

from homeserver.search.text import MAX_WORD_LENGTH, fold, surface_words, words


def test_words_are_folded_and_lose_their_diacritics() -> None:
    assert words("Café au LAIT, Straße!") == ["cafe", "au", "lait", "strasse"]
    assert fold("ÉCOLE") == "ecole"


def test_punctuation_and_symbols_separate_words() -> None:
    assert words("e-mail: foo@bar.com #tag 3.14 🎉 snake_case") == [
        "e", "mail", "foo", "bar", "com", "tag", "3", "14", "snake", "case",
    ]  # fmt: skip


def test_marks_of_indic_scripts_stay_inside_words() -> None:
    # Vowel signs (category Mc) would cut the word apart with Python's \w.
    assert len(words("हिन्दी भाषा")) == 2


def test_repeats_are_kept_and_overlong_runs_dropped() -> None:
    assert words("go go go") == ["go", "go", "go"]
    assert words("x" * (MAX_WORD_LENGTH + 1) + " ok") == ["ok"]


def test_surface_words_keep_what_was_written() -> None:
    assert list(surface_words("Encryption, café")) == ["Encryption", "café"]
