# The part of py_vapid (which ships no type information) this server uses.
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

class VapidException(Exception): ...

class Vapid02:
    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey | None = ...,
        conf: Mapping[str, Any] | None = ...,
    ) -> None: ...
    def sign(self, claims: Mapping[str, Any], crypto_key: str | None = ...) -> dict[str, str]: ...

Vapid = Vapid02
