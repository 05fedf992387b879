"""Password hashing with bcrypt, compatible with Synapse's hashes.

Synapse stores ``bcrypt(password + pepper)``; we do the same so that accounts
imported from Synapse keep their passwords.  Hashing is deliberately slow, so it
runs on a thread, never on the reactor.
"""

from __future__ import annotations

import bcrypt
from twisted.internet import threads


class PasswordHasher:
    def __init__(self, *, rounds: int = 12, pepper: str = "") -> None:
        self._rounds = rounds
        self._pepper = pepper.encode("utf-8")

    def _peppered(self, password: str) -> bytes:
        # bcrypt only reads 72 bytes; longer inputs are truncated the same way Synapse's are.
        return password.encode("utf-8") + self._pepper

    def hash_blocking(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        return bcrypt.hashpw(self._peppered(password), salt).decode("ascii")

    def check_blocking(self, password: str, stored_hash: str) -> bool:
        try:
            return bcrypt.checkpw(self._peppered(password), stored_hash.encode("ascii"))
        except ValueError:  # not a bcrypt hash (e.g. an account with no password)
            return False

    async def hash(self, password: str) -> str:
        return await threads.deferToThread(self.hash_blocking, password)

    async def check(self, password: str, stored_hash: str) -> bool:
        return await threads.deferToThread(self.check_blocking, password, stored_hash)
