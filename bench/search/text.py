"""Deterministic chat text and display names for the search benchmark.

Message words are drawn from an English vocabulary (function words first, then
content words, roughly by frequency) with a Zipf-like distribution: the word of rank
*r* is drawn with weight 1 / *r*.  A few rare words that are not in the vocabulary
are planted in a known number of messages, so the report can show how many results
each server found next to how many messages hold the word.  The same seed gives the
same text, on both servers and in every run.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Iterator

import attrs

_VOCABULARY = """
the to and a of i you it is in that for on we this be have with at not are
was but so just what can do my if me they will your all about get there out
up from one like know as or think no how when now some good time see go
would people then new more make any work here today going back need meeting
want right well also call really team great thanks lol yes yeah week project
day tomorrow first after last little still way could next please sure look
thing said doing morning home only because let before something again much
long very friday help coming did maybe problem fine cool office found who
write update talk other love night year idea place while check send email
weekend review code lunch working build release plan issue test fix server
later hour minute phone message someone everyone already around said tonight
coffee dinner train station city street house room window door table kitchen
garden weather rain sunny cold warm snow summer winter spring autumn holiday
travel flight ticket hotel beach mountain river lake forest park walk run
music song concert movie film book story news paper article video picture photo
game match score player football tennis school class lesson teacher student
exam homework question answer number money price pay bank card account order
shop market store buy sell cheap expensive birthday party gift cake wine beer
friend family mother father sister brother child baby dog cat bird horse
doctor hospital health sick tired happy sad angry funny strange quiet busy
early late soon never always often sometimes together alone everything nothing
change start finish open close move stay leave bring carry keep hold share
remember forget understand explain agree decide choose happen finally suddenly
computer laptop screen keyboard battery charger network internet wifi browser
database backup deploy branch commit merge ticket sprint deadline schedule
budget report slides presentation customer client contract invoice meeting
design feature bug crash error warning log metric dashboard alert incident
breakfast pizza pasta salad soup bread cheese chocolate apple banana orange
blue red green yellow black white purple silver golden bright dark heavy light
small large huge tiny short tall young old fast slow easy hard simple complex
north south east west left right middle corner edge center bridge tower castle
island ocean desert valley village farm field road path journey adventure
"""

#: Not in the vocabulary: each is planted in a known number of messages.
PLANTED_WORDS = (
    "kaleidoscope",
    "marmalade",
    "zeppelin",
    "xylophone",
    "quagmire",
    "labyrinth",
    "periwinkle",
    "saxophone",
    "trampoline",
    "wanderlust",
)

#: Frequent content words (not stop words in any search configuration) to search for.
COMMON_QUERY_WORDS = ("meeting", "people", "time", "today", "thanks")

SENTINEL_WORD = "quokkasentinel"

_FIRST_NAMES = """
Aaliyah Adam Adrian Aiden Alan Alice Amara Amelia Andrea Anna Arjun Arthur Astrid
Beatrice Ben Bianca Boris Bruno Camila Carlos Caroline Chen Chloe Clara Daniel
Dario Diana Dmitri Edith Elena Elias Emil Emma Enzo Ethan Farah Felix Fiona
Freya Gabriel Grace Hana Hannah Harvey Hugo Ingrid Isaac Isabel Ivan Jack Jasmine
Javier Jonas Julia Kai Karim Kate Kenji Lara Laura Leo Lina Lucas Lucia Magnus
Maria Mateo Maya Mei Milan Mira Nadia Naomi Nina Noah Olga Oliver Omar Oscar
Paula Pedro Priya Rafael Rosa Ruby Samir Sara Sofia Soren Tara Theo Tomas Uma
Vera Victor Yara Yusuf Zara
"""

_LAST_NAMES = """
Abbott Acosta Adler Alvarez Andersen Baker Barros Becker Bennett Berg Bianchi
Brandt Brooks Campbell Carter Castillo Chang Costa Dalton Duarte Dubois Eriksen
Evans Fischer Fleming Fontaine Garcia Gomez Gray Greco Hansen Harper Hayes Hoffmann
Ito Jensen Johansson Kaplan Keller Kim Klein Kowalski Kramer Larsen Laurent Lehmann
Lopez Marino Martens Meyer Moreau Morgan Nakamura Novak Olsen Ortega Park Patel
Perez Petrov Quinn Reyes Richter Rossi Russo Santos Sato Schmidt Schneider Silva
Singh Sorensen Suzuki Tanaka Torres Varga Vogel Wagner Walsh Weber Wolf Yamamoto
Zhang Ziegler Bauer Romano Ferrari Lindqvist Nieminen Horvat Popescu Okafor
Mensah Haddad Farouk Demir Kaya Nguyen Tran
"""


def vocabulary() -> list[str]:
    seen: dict[str, None] = {}
    for word in _VOCABULARY.split():
        seen.setdefault(word, None)
    return list(seen)


def transposed(word: str) -> str:
    """``word`` with two adjacent, different letters swapped, as near its middle as
    possible (so the result is always a different word)."""
    middle = len(word) // 2
    for at in sorted(range(len(word) - 1), key=lambda at: abs(at - middle)):
        if word[at] != word[at + 1]:
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    raise ValueError(f"no transposition changes {word!r}")


@attrs.frozen
class Query:
    """One search term, its kind and how many messages hold what it names."""

    kind: str  # "common", "rare", "misspelled", "prefix"
    term: str
    #: Messages holding the word exactly (for a misspelling: the correctly spelled
    #: word; for a prefix: any word starting with it).
    expected: int


class MessageText:
    """The text of message 0 .. count - 1, and the number of messages holding each word."""

    def __init__(self, count: int, *, seed: int = 14, plants_per_word: int = 20) -> None:
        self.count = count
        self._seed = seed
        self._words = vocabulary()
        self._cumulative = list(
            itertools.accumulate(1.0 / rank for rank in range(1, len(self._words) + 1))
        )
        #: message index -> the planted word it carries.
        self.planted: dict[int, str] = {}
        picker = random.Random(seed)
        free = list(range(count))
        picker.shuffle(free)
        per_word = min(plants_per_word, count // (2 * len(PLANTED_WORDS)))
        for number, word in enumerate(PLANTED_WORDS):
            for index in free[number * per_word : (number + 1) * per_word]:
                self.planted[index] = word
        self.holding: Counter[str] = Counter()

    def _draw(self, rng: random.Random) -> str:
        point = rng.random() * self._cumulative[-1]
        return self._words[bisect.bisect_left(self._cumulative, point)]

    def message(self, index: int) -> str:
        """Message ``index``'s text (3-20 words, a sentence's capital and punctuation)."""
        rng = random.Random(self._seed * 1_000_003 + index)
        words = [self._draw(rng) for _ in range(rng.randint(3, 20))]
        planted = self.planted.get(index)
        if planted is not None:
            words.insert(rng.randrange(len(words) + 1), planted)
        words[0] = words[0].capitalize()
        return " ".join(words) + rng.choice((".", ".", "!", "?", "", " :)"))

    def all_messages(self) -> Iterator[str]:
        """Every message in order, counting the messages that hold each word."""
        self.holding.clear()
        for index in range(self.count):
            text = self.message(index)
            self.holding.update({_plain(word) for word in text.split()})
            yield text

    def queries(self) -> list[Query]:
        """The terms searched for, by kind; call after :meth:`all_messages` ran."""

        def prefix_count(prefix: str) -> int:
            return sum(n for word, n in self.holding.items() if word.startswith(prefix))

        queries = [Query("common", word, self.holding[word]) for word in COMMON_QUERY_WORDS]
        queries += [Query("rare", word, self.holding[word]) for word in PLANTED_WORDS]
        queries += [
            Query("misspelled", transposed(word), self.holding[word]) for word in PLANTED_WORDS
        ]
        # Prefix queries: each planted word cut to 5 letters (so none is a whole word).
        queries += [Query("prefix", word[:5], prefix_count(word[:5])) for word in PLANTED_WORDS]
        return queries


def _plain(word: str) -> str:
    return word.strip(".!?:)").lower()


QUERY_KINDS = ("common", "rare", "misspelled", "prefix")


def display_name(index: int, *, seed: int = 14) -> str:
    """A person's name, deterministic per index; about one in a hundred repeats a
    first name, one in a hundred and ten a last name."""
    firsts, lasts = _FIRST_NAMES.split(), _LAST_NAMES.split()
    rng = random.Random(seed * 7_919 + index)
    return f"{rng.choice(firsts)} {rng.choice(lasts)}"


def name_queries(names: list[str]) -> dict[str, list[tuple[str, int]]]:
    """Directory queries by kind, each with the number of users whose name matches
    (full name: the same name; prefix: a name word starting with it; misspelled: the
    correctly spelled full name)."""
    holding = Counter(names)
    picked = [names[(index * 97) % len(names)] for index in range(10)]
    full = [(name, holding[name]) for name in picked]
    misspelled = [
        (f"{name.split()[0]} {transposed(name.split()[1])}", holding[name]) for name in picked
    ]

    def prefix_count(prefix: str) -> int:
        return sum(
            1 for name in names if any(word.lower().startswith(prefix) for word in name.split())
        )

    prefix = [(word, prefix_count(word)) for word in (n.split()[1][:3].lower() for n in picked)]
    return {"full_name": full, "prefix": prefix, "misspelled": misspelled}
