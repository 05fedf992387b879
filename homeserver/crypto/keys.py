"""The server's ed25519 signing key, in Synapse's key-file format.

The file holds lines of ``ed25519 <key_id version> <unpadded base64 seed>`` — the
format Synapse writes — so a server's identity can move between implementations.
spec: server-server-api.md#retrieving-server-keys
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from signedjson.types import SigningKey


class SigningKeyError(Exception):
    pass


def new_key_version() -> str:
    # Synapse's convention: "a_" and four random characters.
    alphabet = string.ascii_letters + string.digits
    return "a_" + "".join(secrets.choice(alphabet) for _ in range(4))


def write_new_signing_key(path: Path) -> SigningKey:
    """Generate a key and write it to ``path`` (readable by the owner only)."""
    key = generate_signing_key(new_key_version())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        write_signing_keys(stream, [key])
    return key


def read_signing_key(path: Path) -> SigningKey:
    """The first key in ``path``; :class:`SigningKeyError` if it is missing or invalid."""
    try:
        with path.open() as stream:
            keys = read_signing_keys(stream)
    except FileNotFoundError:
        raise SigningKeyError(
            f"signing key file {path} does not exist (create one with "
            "'homeserver generate-config', or copy your Synapse server's key file)"
        ) from None
    except (OSError, ValueError, IndexError) as error:
        raise SigningKeyError(f"signing key file {path} is not a valid key file: {error}") from None
    if not keys:
        raise SigningKeyError(f"signing key file {path} contains no keys")
    return keys[0]


def load_or_create_signing_key(path: Path, *, create: bool) -> SigningKey:
    if create and not path.exists():
        return write_new_signing_key(path)
    return read_signing_key(path)
