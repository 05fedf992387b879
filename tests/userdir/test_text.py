"""The directory's text rules: normalisation, words and typo distance."""

from __future__ import annotations

from homeserver.userdir.handler import directory_entry, has_trigram
from homeserver.userdir.text import edit_distance, max_typos, normalise, query_words


def test_normalisation_ignores_case_accents_spacing_and_nul() -> None:
    assert normalise("  José\tÖLÇER ") == "jose olcer"
    assert normalise("Straße") == "strasse"
    assert normalise("ｆｕｌｌ") == "full"  # compatibility forms
    assert normalise("a\x00b") == "a b"


def test_query_words_split_on_whitespace_only_and_drop_repeats() -> None:
    assert query_words("@J.Smith:Example.org  smith SMITH") == ["@j.smith:example.org", "smith"]
    assert len(query_words(" ".join(f"w{i}" for i in range(20)))) == 8


def test_an_entry_is_found_by_its_name_words_and_localpart() -> None:
    entry = directory_entry("@j.smith:hs", "Dr. John O'Brien", None, is_local=True)
    assert entry.name_key == "dr. john o'brien"
    assert entry.localpart_key == "j.smith"
    # Not the server name: "hs" would match every local user.
    assert entry.search_text == "dr. john o'brien j.smith"
    assert directory_entry("@J.Smith:HS", None, None, is_local=False).user_id_key == "@j.smith:hs"
    assert entry.words == ("j.smith", "dr", "john", "o", "brien", "j", "smith")
    assert directory_entry("@x:hs", None, None, is_local=False).name_key == ""


def test_typos_allowed_grow_with_the_word() -> None:
    assert [max_typos("x" * n) for n in (3, 4, 7, 8)] == [0, 1, 1, 2]
    assert edit_distance("jonh", "john", 1) == 1  # a swap is one edit
    assert edit_distance("smth", "smith", 1) == 1
    assert edit_distance("jhon", "john", 1) == 1
    assert edit_distance("joan", "john", 1) == 1
    assert edit_distance("jane", "john", 1) == 2  # over the limit: limit + 1
    assert edit_distance("alexandra", "alexander", 2) == 2
    assert edit_distance("short", "muchlongerword", 2) == 3


def test_words_without_a_trigram_take_the_prefix_path() -> None:
    assert [has_trigram(word) for word in ("jo", "a.b", "a.b.c", "j.smi", "joh")] == [
        False,
        False,
        False,
        True,
        True,
    ]
