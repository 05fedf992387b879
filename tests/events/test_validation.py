"""PDU format validation: every rejection reason, and garbage never crashes it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.events.errors import InvalidEventError
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_reference_hash,
)
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import required_signature_servers
from homeserver.events.validation import validate_pdu

ALL_VERSIONS = [str(n) for n in range(1, 13)]
HASH = "Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"  # URL-safe
HASH_STD = HASH.replace("-", "+")


def ref(version: str, n: int = 0) -> Any:
    """A reference to another event in the format of ``version``."""
    if version in ("1", "2"):
        return [f"$prev{n}:example.org", {"sha256": "abc"}]
    base = HASH_STD if version == "3" else HASH
    return "$" + base[:-2] + f"{n:02d}"


def valid_pdu(version: str, **overrides: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": "!" + HASH if version == "12" else "!room:example.org",
        "sender": "@alice:example.org",
        "origin_server_ts": 1_700_000_000_000,
        "depth": 10,
        "prev_events": [ref(version)],
        "auth_events": [ref(version, 1), ref(version, 2)],
        "content": {"body": "hello", "msgtype": "m.text"},
        "signatures": {"example.org": {"ed25519:a": "sig"}},
        "unsigned": {"age": 5},
    }
    if version in ("1", "2"):
        pdu["event_id"] = "$event:example.org"
    pdu.update(overrides)
    add_content_hash(pdu)
    return pdu


def v12_create(**overrides: Any) -> dict[str, Any]:
    pdu = valid_pdu("12", type="m.room.create", state_key="", prev_events=[], auth_events=[])
    del pdu["room_id"]
    pdu.update(overrides)
    return pdu


def reject(pdu: object, version: str, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        validate_pdu(pdu, KNOWN_ROOM_VERSIONS[version])  # type: ignore[arg-type]


def accept(pdu: dict[str, Any], version: str) -> None:
    validate_pdu(pdu, KNOWN_ROOM_VERSIONS[version])


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_well_formed_pdu_is_accepted(version: str) -> None:
    pdu = valid_pdu(version)
    accept(pdu, version)
    accept(valid_pdu(version, type="m.room.topic", state_key=""), version)
    assert event_from_pdu(pdu, KNOWN_ROOM_VERSIONS[version]).sender == "@alice:example.org"


@pytest.mark.parametrize("pdu", [None, [], "pdu", 5])
def test_non_object_pdu_is_rejected(pdu: object) -> None:
    reject(pdu, "12", "must be a JSON object")


# --- size limits -----------------------------------------------------------------------


def _pdu_of_size(version: str, size: int) -> dict[str, Any]:
    pdu = valid_pdu(version, content={"body": ""})
    current = len(_encoded(pdu))
    pdu["content"]["body"] = "x" * (size - current)
    return pdu


def _encoded(pdu: dict[str, Any]) -> bytes:
    from homeserver.events.canonical import encode_canonical_json

    return encode_canonical_json(pdu)


@pytest.mark.parametrize("version", ["1", "12"])
def test_event_of_exactly_65536_bytes_is_accepted_and_one_more_is_rejected(version: str) -> None:
    at_limit = _pdu_of_size(version, 65536)
    assert len(_encoded(at_limit)) == 65536
    accept(at_limit, version)
    over = _pdu_of_size(version, 65537)
    reject(over, version, "65537 bytes of canonical JSON; the limit is 65536")


@pytest.mark.parametrize("key", ["type", "state_key"])
@pytest.mark.parametrize("version", ["1", "11"])
def test_type_and_state_key_may_be_255_but_not_256_long(key: str, version: str) -> None:
    accept(valid_pdu(version, **{key: "a" * 255}), version)
    reject(valid_pdu(version, **{key: "a" * 256}), version, f"'{key}' is 256")


@pytest.mark.parametrize(("version", "accepted"), [("10", True), ("11", False), ("12", False)])
def test_v11_measures_key_limits_in_bytes_earlier_versions_in_codepoints(
    version: str, accepted: bool
) -> None:
    pdu = valid_pdu(version, state_key="é" * 200)  # 200 code points, 400 bytes
    if accepted:
        accept(pdu, version)
    else:
        reject(pdu, version, "'state_key' is 400 bytes")


def test_v10_sender_long_in_bytes_but_not_codepoints_is_accepted_end_to_end() -> None:
    sender = "@" + "é" * 200 + ":example.org"  # 213 code points, 413 bytes
    pdu = valid_pdu("10", sender=sender)
    _exercise("10", pdu)
    assert required_signature_servers(pdu, KNOWN_ROOM_VERSIONS["10"]) == {"example.org"}
    reject(valid_pdu("11", sender=sender), "11", "'sender' is 413 bytes")


@pytest.mark.parametrize(
    ("key", "value", "versions"),
    [
        ("sender", "@" + "a" * 250 + ":example.org", ALL_VERSIONS),
        ("room_id", "!" + "a" * 250 + ":example.org", [str(n) for n in range(1, 12)]),
        ("event_id", "$" + "a" * 250 + ":example.org", ["1", "2"]),
    ],
)
def test_identifiers_over_255_are_rejected(key: str, value: str, versions: list[str]) -> None:
    for version in versions:
        reject(valid_pdu(version, **{key: value}), version, f"'{key}' is {len(value)} ")


# --- required keys and JSON types ------------------------------------------------------

REQUIRED = ["type", "sender", "content", "depth", "origin_server_ts", "hashes", "signatures",
            "prev_events", "auth_events", "room_id"]  # fmt: skip


@pytest.mark.parametrize("key", REQUIRED)
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_missing_required_key_is_rejected(key: str, version: str) -> None:
    pdu = valid_pdu(version)
    del pdu[key]
    reject(pdu, version, f"missing required key '{key}'")


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_and_v2_require_event_id(version: str) -> None:
    pdu = valid_pdu(version)
    del pdu["event_id"]
    reject(pdu, version, "missing required key 'event_id'")
    reject(valid_pdu(version, event_id="$" + HASH), version, "not a valid event ID")


WRONG_TYPES: list[tuple[str, object, str]] = [
    ("type", 5, "'type' must be a string"),
    ("sender", None, "'sender' must be a string"),
    ("state_key", 0, "'state_key' must be a string"),
    ("room_id", ["!r:example.org"], "'room_id' must be a string"),
    ("content", [], "'content' must be an object"),
    ("content", "text", "'content' must be an object"),
    ("depth", "10", "'depth' must be an integer"),
    ("depth", True, "'depth' must be an integer, got bool"),
    ("depth", -1, "depth -1 is outside"),
    ("origin_server_ts", None, "'origin_server_ts' must be an integer"),
    ("origin_server_ts", False, "'origin_server_ts' must be an integer"),
    ("hashes", [], "'hashes' must be an object"),
    ("hashes", {}, "string 'sha256'"),
    ("hashes", {"sha256": 5}, "string 'sha256'"),
    ("signatures", [], "'signatures' must be an object"),
    ("signatures", {"example.org": "sig"}, "signatures of 'example.org' must be an object"),
    ("signatures", {"example.org": {"ed25519:a": 5}}, "must be a string"),
    ("unsigned", [], "'unsigned' must be an object"),
    ("prev_events", {}, "'prev_events' must be an array"),
    ("auth_events", None, "'auth_events' must be an array"),
]


@pytest.mark.parametrize(("key", "value", "reason"), WRONG_TYPES)
@pytest.mark.parametrize("version", ["1", "3", "6", "12"])
def test_wrong_json_type_is_rejected(key: str, value: object, reason: str, version: str) -> None:
    pdu = valid_pdu(version)
    pdu[key] = value
    reject(pdu, version, reason)


@pytest.mark.parametrize("version", ["1", "5"])
def test_depth_may_reach_2_pow_63_minus_1_before_v6(version: str) -> None:
    accept(valid_pdu(version, depth=2**63 - 1), version)
    reject(valid_pdu(version, depth=2**63), version, "outside 0..")


def test_float_origin_server_ts_is_rejected_even_in_lenient_versions() -> None:
    reject(valid_pdu("1", origin_server_ts=1.5), "1", "'origin_server_ts' must be an integer")


@pytest.mark.parametrize("version", [str(n) for n in range(1, 11)])
def test_redacts_must_be_a_string_before_v11(version: str) -> None:
    reject(valid_pdu(version, type="m.room.redaction", redacts=5), version, "'redacts'")


def test_top_level_redacts_is_ignored_from_v11() -> None:
    accept(
        valid_pdu("11", type="m.room.redaction", redacts=5, content={"redacts": ref("11")}), "11"
    )


# --- prev_events / auth_events ---------------------------------------------------------


@pytest.mark.parametrize(("key", "limit"), [("prev_events", 20), ("auth_events", 10)])
@pytest.mark.parametrize("version", ["1", "3", "12"])
def test_reference_count_limits(key: str, limit: int, version: str) -> None:
    accept(valid_pdu(version, **{key: [ref(version, n) for n in range(limit)]}), version)
    too_many = [ref(version, n) for n in range(limit + 1)]
    reject(valid_pdu(version, **{key: too_many}), version, f"has {limit + 1} entries")


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("$prev:example.org", r"\[event_id, hashes\] pairs"),
        (["$prev:example.org"], r"\[event_id, hashes\] pairs"),
        (["$prev:example.org", {}, {}], r"\[event_id, hashes\] pairs"),
        (["$prev:example.org", "hash"], "must be objects"),
        ([5, {}], "not a room version 1 event ID"),
        (["$" + HASH, {}], "not a room version 1 event ID"),
    ],
)
def test_v1_references_must_be_id_and_hash_pairs(reference: object, reason: str) -> None:
    reject(valid_pdu("1", prev_events=[reference]), "1", reason)


@pytest.mark.parametrize(
    ("version", "reference"),
    [
        ("3", "$" + HASH),  # URL-safe alphabet in v3
        ("4", "$" + HASH_STD),  # standard alphabet in v4+
        ("12", "$prev:example.org"),
        ("12", ["$" + HASH, {}]),
        ("12", "$" + HASH[:-1]),
        ("12", None),
    ],
)
def test_references_must_use_the_version_event_id_format(version: str, reference: object) -> None:
    reject(valid_pdu(version, auth_events=[reference]), version, "event ID")


# --- identifiers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender", ["alice:example.org", "@alice", "@alice:exa_mple.org", "@a\x00:x.org"]
)
@pytest.mark.parametrize("version", ["1", "12"])
def test_invalid_sender_is_rejected(sender: str, version: str) -> None:
    reject(valid_pdu(version, sender=sender), version, "invalid sender")


def test_historical_sender_is_accepted() -> None:
    accept(valid_pdu("12", sender="@Alice Smith:example.org"), "12")


@pytest.mark.parametrize("room_id", ["room:example.org", "!room", "!" + HASH, "!:example.org"])
@pytest.mark.parametrize("version", ["1", "11"])
def test_pre_v12_room_id_needs_a_domain(room_id: str, version: str) -> None:
    reject(valid_pdu(version, room_id=room_id), version, "not a valid '!opaque_id:domain'")


@pytest.mark.parametrize(
    "room_id", ["!room:example.org", "!" + HASH_STD, "$" + HASH, "!" + HASH + "x"]
)
def test_v12_room_id_must_be_the_hash_form(room_id: str) -> None:
    reject(valid_pdu("12", room_id=room_id), "12", "is not a room version 12 room ID")


def test_v12_create_event_must_not_have_a_room_id() -> None:
    accept(v12_create(), "12")
    reject(v12_create(room_id="!" + HASH), "12", "must not have a room_id")


def test_pre_v12_create_event_needs_a_room_id() -> None:
    pdu = valid_pdu("11", type="m.room.create", state_key="")
    del pdu["room_id"]
    reject(pdu, "11", "missing required key 'room_id'")


# --- canonical JSON --------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, 2**53, -(2**53), [0.0]])
@pytest.mark.parametrize("version", [str(n) for n in range(6, 13)])
def test_v6_and_later_reject_floats_and_big_integers_anywhere(value: object, version: str) -> None:
    reject(valid_pdu(version, content={"nested": {"v": value}}), version, "canonical JSON")


@pytest.mark.parametrize("version", ["1", "5"])
def test_versions_before_v6_accept_floats_and_big_integers(version: str) -> None:
    accept(valid_pdu(version, content={"f": 1.5, "big": 2**60}), version)


@pytest.mark.parametrize(
    "content",
    [
        {"v": float("nan")},
        {"v": float("-inf")},
        {"v": "\udc00"},
        {"\ud800": 1},
        {"v": {1: 2}},
        {"v": {1, 2}},
    ],
    ids=["nan", "inf", "surrogate-value", "surrogate-key", "int-key", "set"],
)
@pytest.mark.parametrize("version", ["1", "12"])
def test_non_json_values_are_rejected(content: dict[Any, Any], version: str) -> None:
    pdu = valid_pdu("1" if version == "1" else "12")
    pdu["content"] = content
    reject(pdu, version, "JSON")


# --- garbage in, InvalidEventError out ---------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["@a:b.c", "!r:b.c", "$e:b.c", "$" + HASH, "!" + HASH, "m.room.member"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
PDU_KEYS = sorted(set(valid_pdu("1")) | {"state_key", "redacts", "origin", "membership"})


@st.composite
def mutated_pdus(draw: st.DrawFn) -> tuple[str, object]:
    version = draw(st.sampled_from(ALL_VERSIONS))
    pdu = valid_pdu(version)
    for key in draw(st.lists(st.sampled_from(PDU_KEYS), max_size=4)):
        if draw(st.booleans()):
            pdu.pop(key, None)
        else:
            pdu[key] = draw(JSON_VALUES)
    if draw(st.booleans()):
        pdu["content"] = draw(JSON_VALUES)
    return version, pdu


def _exercise(version: str, pdu: object) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    try:
        event = event_from_pdu(pdu, room_version)  # type: ignore[arg-type]
    except InvalidEventError:
        return
    # Whatever validation accepts, the rest of the pipeline must handle.
    assert isinstance(pdu, dict)
    assert event.event_id
    prune_event_dict(copy.deepcopy(pdu), room_version)
    compute_content_hash(pdu)
    check_content_hash(pdu)
    compute_reference_hash(pdu, room_version)
    required_signature_servers(pdu, room_version)


@settings(max_examples=400, deadline=None)
@given(mutated_pdus())
def test_mutated_pdus_raise_only_invalid_event_error(case: tuple[str, object]) -> None:
    _exercise(*case)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ALL_VERSIONS),
    JSON_VALUES | st.dictionaries(st.sampled_from(PDU_KEYS), JSON_VALUES),
)
def test_random_json_raises_only_invalid_event_error(version: str, pdu: object) -> None:
    _exercise(version, pdu)
