# The part of http_ece (which ships no type information) the tests use.
from typing import Any

def decrypt(
    content: bytes,
    salt: bytes | None = ...,
    key: bytes | None = ...,
    private_key: Any = ...,
    dh: bytes | None = ...,
    auth_secret: bytes | None = ...,
    keyid: str | None = ...,
    keylabel: str = ...,
    rs: int = ...,
    version: str = ...,
) -> bytes: ...
