"""Password hashing: argon2id for every new hash; bcrypt hashes (Synapse's) still verify.

Every byte of a password counts.  bcrypt reads at most 72 bytes (bcrypt 4 drops the
rest silently, bcrypt 5 refuses), so with a pepper appended a long password could
lose its pepper, and two passwords differing after byte 72 were the same password.
argon2id has no such limit, so new hashes are ``argon2id(password + pepper)``.

Accounts imported from Synapse carry ``bcrypt(password + pepper)``, which Synapse
computed over the first 72 bytes; those are verified the same way, and the password
is re-hashed with argon2id on the first successful login, after which all of it
counts.  Hashes whose argon2 cost is below the configured one are upgraded likewise.

Hashing is deliberately slow, so it runs on a thread, never on the reactor.
"""

from __future__ import annotations

import enum

import argon2
import attrs
import bcrypt
from twisted.internet import threads

from homeserver import errors

#: The longest password accepted (Synapse's limit too); all of its bytes count.
MAX_PASSWORD_BYTES = 512

#: bcrypt's input limit: Synapse's hashes cover only these first bytes.
_BCRYPT_MAX_INPUT = 72
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def check_new_password(password: str) -> None:
    """400 ``M_INVALID_PARAM`` unless ``password`` may be set as a password."""
    if not password:
        raise errors.invalid_param("The new password must not be empty")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise errors.invalid_param(f"The password is longer than {MAX_PASSWORD_BYTES} bytes")


@attrs.frozen
class Argon2Cost:
    """argon2id parameters; the defaults are RFC 9106's second recommended option."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4


class PasswordVerdict(enum.Enum):
    WRONG = "wrong"
    RIGHT = "right"
    #: Right, but stored with bcrypt or weaker argon2 parameters than configured.
    RIGHT_NEEDS_REHASH = "right_needs_rehash"

    @property
    def is_right(self) -> bool:
        return self is not PasswordVerdict.WRONG


class PasswordHasher:
    def __init__(self, *, cost: Argon2Cost = Argon2Cost(), pepper: str = "") -> None:
        self._pepper = pepper.encode("utf-8")
        self._argon2 = argon2.PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_cost_kib,
            parallelism=cost.parallelism,
            type=argon2.Type.ID,
        )

    def _peppered(self, password: str) -> bytes:
        return password.encode("utf-8") + self._pepper

    def hash_blocking(self, password: str) -> str:
        return self._argon2.hash(self._peppered(password))

    def check_blocking(self, password: str, stored_hash: str) -> PasswordVerdict:
        if stored_hash.startswith(_BCRYPT_PREFIXES):
            return self._check_bcrypt(password, stored_hash)
        try:
            self._argon2.verify(stored_hash, self._peppered(password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            # A mismatch, or not a hash at all (e.g. an account with no password).
            return PasswordVerdict.WRONG
        if self._argon2.check_needs_rehash(stored_hash):
            return PasswordVerdict.RIGHT_NEEDS_REHASH
        return PasswordVerdict.RIGHT

    def _check_bcrypt(self, password: str, stored_hash: str) -> PasswordVerdict:
        # Exactly what Synapse hashed: the first 72 bytes of password + pepper.
        candidate = self._peppered(password)[:_BCRYPT_MAX_INPUT]
        try:
            right = bcrypt.checkpw(candidate, stored_hash.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return PasswordVerdict.WRONG
        return PasswordVerdict.RIGHT_NEEDS_REHASH if right else PasswordVerdict.WRONG

    async def hash(self, password: str) -> str:
        return await threads.deferToThread(self.hash_blocking, password)

    async def check(self, password: str, stored_hash: str) -> PasswordVerdict:
        return await threads.deferToThread(self.check_blocking, password, stored_hash)
