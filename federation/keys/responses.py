"""Reading a server's key response: shape, keys and the origin's own signature (pure).

A key response is what ``GET /_matrix/key/v2/server`` returns, and what each entry
of a notary's ``/_matrix/key/v2/query`` answer is: the server's name, its current
``verify_keys`` (valid until ``valid_until_ts``), its ``old_verify_keys`` (valid
until each one's ``expired_ts``), signed by the server itself with one of the
current keys.  Everything here comes from other servers, so every field is checked
before anything is believed; a response that fails is refused whole.

spec: server-server-api.md#publishing-keys, data/api/server-server/definitions/keys.yaml
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import attrs
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import VerifyKey
from unpaddedbase64 import decode_base64

from federation.keys.errors import KeyFetchError
from homeserver.identifiers import is_valid_server_name

logger = logging.getLogger(__name__)

#: More keys than any real server has (Synapse publishes one, plus its old ones); a
#: response listing more is refused rather than stored.
MAX_KEYS_PER_RESPONSE = 100
#: "Servers MUST use the lesser of [valid_until_ts] and 7 days into the future when
#: determining if a key is valid" (keys.yaml): counted from when we received it.
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000
#: The largest timestamp stored (BIGINT).
_MAX_TS = 2**63 - 1
#: The only algorithm servers sign with; the version's characters are the spec's.
_KEY_ID = re.compile(r"ed25519:[a-zA-Z0-9_]{1,255}")
_ED25519_KEY_BYTES = 32
_ED25519_PREFIX = "ed25519:"


@attrs.frozen
class ServerVerifyKey:
    """One public key of a server, as a key response lists it."""

    key_id: str
    verify_key: VerifyKey
    #: A current key: the response's ``valid_until_ts``; an old key: its ``expired_ts``.
    valid_until_ts: int
    #: Listed under ``old_verify_keys`` (valid for events up to ``expired_ts`` only).
    old: bool

    def usable_until(self, received_ts: int) -> int:
        """Until when the key may be believed, given when its response was received:
        a current key no more than 7 days after that (spec, keys.yaml)."""
        if self.old:
            return self.valid_until_ts
        return min(self.valid_until_ts, received_ts + MAX_KEY_VALIDITY_MS)


@attrs.frozen
class ServerKeyResponse:
    """A key response whose shape has been checked."""

    server_name: str
    valid_until_ts: int
    #: By key ID; a key listed both as current and old counts as current.
    keys: Mapping[str, ServerVerifyKey]
    #: The object as received, every signature included (stored and served again by
    #: the notary verbatim).
    json: Mapping[str, Any]


def parse_key_response(response: object, *, expected_server: str) -> ServerKeyResponse:
    """Check the shape of a key response for ``expected_server`` (not its signatures).

    Raises :class:`KeyFetchError` saying what is wrong.  Keys of other algorithms are
    skipped, as the spec allows servers to publish them; malformed ed25519 keys make
    the response unusable.
    """
    if not isinstance(response, dict):
        raise KeyFetchError("key response is not a JSON object")
    server_name = response.get("server_name")
    if not isinstance(server_name, str) or not is_valid_server_name(server_name):
        raise KeyFetchError("key response has no valid server_name")
    if server_name != expected_server:
        raise KeyFetchError(f"key response is for {server_name!r}, not {expected_server!r}")
    valid_until_ts = _timestamp(response.get("valid_until_ts"), "valid_until_ts")
    verify_keys = response.get("verify_keys")
    if not isinstance(verify_keys, dict):
        raise KeyFetchError("key response has no verify_keys object")
    old_verify_keys = response.get("old_verify_keys", {})
    if not isinstance(old_verify_keys, dict):
        raise KeyFetchError("old_verify_keys is not an object")
    if len(verify_keys) + len(old_verify_keys) > MAX_KEYS_PER_RESPONSE:
        raise KeyFetchError(f"key response lists more than {MAX_KEYS_PER_RESPONSE} keys")
    if not isinstance(response.get("signatures"), dict):
        raise KeyFetchError("key response has no signatures object")

    keys: dict[str, ServerVerifyKey] = {}
    for key_id, entry in old_verify_keys.items():
        if not _is_ed25519_key_id(key_id):
            continue
        if not isinstance(entry, dict):
            raise KeyFetchError(f"old_verify_keys[{key_id!r}] is not an object")
        expired_ts = _timestamp(entry.get("expired_ts"), f"old_verify_keys[{key_id!r}].expired_ts")
        keys[key_id] = ServerVerifyKey(key_id, _verify_key(key_id, entry), expired_ts, old=True)
    for key_id, entry in verify_keys.items():
        if not _is_ed25519_key_id(key_id):
            continue
        if not isinstance(entry, dict):
            raise KeyFetchError(f"verify_keys[{key_id!r}] is not an object")
        keys[key_id] = ServerVerifyKey(
            key_id, _verify_key(key_id, entry), valid_until_ts, old=False
        )
    return ServerKeyResponse(server_name, valid_until_ts, keys, response)


def check_self_signed(response: ServerKeyResponse) -> None:
    """The response must be signed by its server with at least one of the current keys
    it lists, and every such signature must be correct; :class:`KeyFetchError` if not.

    Signatures with keys the response does not list as current are not checked here:
    a notary's entry may carry other signatures, and old keys may not vouch for new
    ones.
    """
    signatures = response.json["signatures"].get(response.server_name)
    if not isinstance(signatures, dict):
        raise KeyFetchError(f"key response is not signed by {response.server_name}")
    checked = 0
    for key_id in signatures:
        key = response.keys.get(key_id)
        if key is None or key.old:
            continue
        verify_signature(response.json, response.server_name, key.verify_key)
        checked += 1
    if not checked:
        raise KeyFetchError(
            f"key response is not signed by {response.server_name} with a key it lists"
        )


def verify_signature(json_object: Mapping[str, Any], signer: str, verify_key: VerifyKey) -> None:
    """:class:`KeyFetchError` unless ``json_object`` carries ``signer``'s correct
    signature with ``verify_key``."""
    try:
        verify_signed_json(dict(json_object), signer, verify_key)
    except SignatureVerifyException as error:
        raise KeyFetchError(
            f"bad signature of {signer} with ed25519:{verify_key.version}: {error}"
        ) from None
    except (TypeError, ValueError) as error:
        # canonical JSON refuses some values (e.g. floats); such an object was not
        # signed by any server we could talk to
        raise KeyFetchError(f"cannot check the signature of {signer}: {error}") from None


def decode_public_key(key_id: str, key_base64: str) -> VerifyKey:
    """An ed25519 public key from its ID and unpadded base64; ``ValueError`` if invalid.

    Any version is accepted here (keys from the config: ``old_signing_keys``,
    ``trusted_key_servers``); responses from other servers are held to the spec's
    version characters by :func:`parse_key_response`."""
    if not key_id.startswith(_ED25519_PREFIX) or key_id == _ED25519_PREFIX:
        raise ValueError(f"{key_id!r} is not an ed25519 key ID")
    try:
        key_bytes = decode_base64(key_base64)
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"key {key_id} is not valid base64") from None
    if len(key_bytes) != _ED25519_KEY_BYTES:
        raise ValueError(f"key {key_id} is not {_ED25519_KEY_BYTES} bytes long")
    verify_key: VerifyKey = decode_verify_key_bytes(key_id, key_bytes)
    return verify_key


def _is_ed25519_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and _KEY_ID.fullmatch(key_id) is not None


def _verify_key(key_id: str, entry: Mapping[str, Any]) -> VerifyKey:
    key_base64 = entry.get("key")
    if not isinstance(key_base64, str):
        raise KeyFetchError(f"key {key_id} has no base64 'key'")
    try:
        return decode_public_key(key_id, key_base64)
    except ValueError as error:
        raise KeyFetchError(str(error)) from None


def _timestamp(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TS:
        raise KeyFetchError(f"{what} is not a timestamp in milliseconds")
    return value
