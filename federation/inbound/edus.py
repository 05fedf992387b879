"""Where received EDUs go: one handler per EDU type, registered by whoever owns it
(typing, receipts, presence, to-device, device lists, ...).

Most EDUs are ephemeral and best-effort: an unknown type is ignored and a handler
that fails is logged, never failing the transaction that carried it (the sender
would only retry the whole transaction, PDUs included).  A handler registered as
``durable`` (to-device messages, device-list and signing-key updates: EDUs their
sender keeps until acknowledged) is different: its failure fails the transaction,
so ``/send`` answers 5xx, no response is stored, and the origin sends the EDU again
rather than dropping it as delivered (the PDUs of the retry are deduplicated).

spec: server-server-api.md#edus, data/api/server-server/definitions/edu.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: ``(origin, content)``: the authenticated server that sent the EDU, and its content.
EduHandler = Callable[[str, Mapping[str, Any]], Awaitable[None]]


class EduRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, EduHandler] = {}
        #: Types whose handler's failure fails the transaction (see the module doc).
        self._durable: set[str] = set()

    def register(self, edu_type: str, handler: EduHandler, *, durable: bool = False) -> None:
        """Send every EDU of ``edu_type`` to ``handler`` (one handler per type).
        ``durable``: the origin keeps these EDUs until a transaction carrying them
        is acknowledged, so a failure to handle one is raised, never acknowledged."""
        if edu_type in self._handlers:
            raise ValueError(f"an EDU handler for {edu_type!r} is already registered")
        self._handlers[edu_type] = handler
        if durable:
            self._durable.add(edu_type)

    async def dispatch(self, origin: str, edu_type: str, content: Mapping[str, Any]) -> None:
        """Hand one EDU to its handler; raises only what a durable type's handler
        raises (the transaction must then fail, to be sent again)."""
        handler = self._handlers.get(edu_type)
        if handler is None:
            logger.debug("ignoring EDU of unknown type %r from %s", edu_type, origin)
            return
        try:
            await handler(origin, content)
        except Exception:
            if edu_type in self._durable:
                logger.warning(
                    "handling a durable %r EDU from %s failed: failing the transaction",
                    edu_type,
                    origin,
                )
                raise
            logger.exception("EDU handler for %r failed on an EDU from %s", edu_type, origin)
