from __future__ import annotations

from homeserver.streams.change_cache import StreamChangeCache


def test_entities_changed_after_a_position_are_known() -> None:
    cache: StreamChangeCache[str] = StreamChangeCache(10)
    cache.record("!a", 12)
    cache.record("!b", 15)
    assert cache.changed_since(["!a", "!b", "!c"], 10) == {"!a", "!b"}
    assert cache.changed_since(["!a", "!b", "!c"], 12) == {"!b"}
    assert cache.changed_since(["!a", "!b"], 15) == set()
    assert cache.has_changed_since("!a", 11) is True
    assert cache.has_changed_since("!c", 10) is False


def test_a_position_below_the_floor_is_unknown() -> None:
    cache: StreamChangeCache[str] = StreamChangeCache(10)
    cache.record("!a", 12)
    assert cache.changed_since(["!a"], 9) is None
    assert cache.has_changed_since("!a", 9) is None


def test_a_late_record_of_an_older_position_does_not_move_an_entity_back() -> None:
    cache: StreamChangeCache[str] = StreamChangeCache(0)
    cache.record("!a", 20)
    cache.record("!a", 15)
    assert cache.has_changed_since("!a", 17) is True


def test_forgetting_the_oldest_raises_the_floor_so_nothing_is_answered_wrongly() -> None:
    cache: StreamChangeCache[int] = StreamChangeCache(0, max_entities=4)
    for room in range(5):
        cache.record(room, 100 + room)
    # The two oldest were forgotten: positions before the newest of them are unknown.
    assert cache.floor == 101
    assert cache.changed_since(range(5), 100) is None
    assert cache.changed_since(range(5), 101) == {2, 3, 4}
