"""Uploading, downloading and resolving sync filters (rules only).

Filters are validated strictly when uploaded or passed inline: anything that does
not match the schema is 400 ``M_BAD_JSON``.  Parsed filters are cached, so a
long-polling ``/sync`` that names the same filter each time parses it once.

spec: client-server-api/_index.md#filtering, #post_matrixclientv3useruseridfilter,
#get_matrixclientv3useruseridfilterfilterid, #get_matrixclientv3sync (``filter``)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from homeserver import errors
from homeserver.filtering.model import DEFAULT_FILTER, FilterCollection, InvalidFilterError
from homeserver.storage.filters import FilterStore
from homeserver.util.caches import LruCache
from homeserver.util.untrusted_json import parse_json_text

_MAX_FILTER_ID = 2**63 - 1


def parse_filter(definition: object) -> FilterCollection:
    """The parsed filter; 400 ``M_BAD_JSON`` naming the problem if it is invalid."""
    try:
        return FilterCollection.from_json(definition)
    except InvalidFilterError as error:
        raise errors.bad_json(f"Invalid filter: {error}") from None


def _parse_filter_id(filter_id: str) -> int | None:
    if not (filter_id.isascii() and filter_id.isdecimal()):
        return None
    value = int(filter_id)
    return value if value <= _MAX_FILTER_ID else None


class FilterHandler:
    def __init__(self, store: FilterStore, *, cache_size: int = 10_000) -> None:
        self._store = store
        self._stored: LruCache[tuple[str, int], FilterCollection] = LruCache(cache_size)
        self._inline: LruCache[str, FilterCollection] = LruCache(256)

    async def create(self, user_id: str, filter_json: dict[str, Any]) -> str:
        """Validate and store a filter; returns its ID (never starting with ``{``)."""
        parsed = parse_filter(filter_json)
        text = json.dumps(filter_json, ensure_ascii=False, separators=(",", ":"))
        canonical = json.dumps(
            filter_json, ensure_ascii=False, separators=(",", ":"), sort_keys=True
        )
        filter_hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        filter_id = await self._store.add_filter(user_id, filter_hash, text)
        self._stored.set((user_id, filter_id), parsed)
        return str(filter_id)

    async def get(self, user_id: str, filter_id: str) -> dict[str, Any]:
        """The filter as uploaded; 404 ``M_NOT_FOUND`` unless ``user_id`` uploaded it."""
        number = _parse_filter_id(filter_id)
        text = None if number is None else await self._store.get_filter(user_id, number)
        if text is None:
            raise errors.not_found("No such filter")
        definition: dict[str, Any] = json.loads(text)
        return definition

    async def resolve(self, user_id: str, filter_param: str | None) -> FilterCollection:
        """The filter a ``filter`` query parameter names.

        Absent: everything passes.  Starting with ``{``: inline JSON (400
        ``M_NOT_JSON`` if not JSON, ``M_BAD_JSON`` if not a valid filter).  Otherwise
        the ID of one of the user's filters (400 ``M_INVALID_PARAM`` if there is no
        such filter, as Synapse answers; the spec names no error for this).
        """
        if filter_param is None:
            return DEFAULT_FILTER
        if filter_param.startswith("{"):
            return self._resolve_inline(filter_param)
        number = _parse_filter_id(filter_param)
        if number is None:
            raise errors.invalid_param("No such filter")
        cached = self._stored.get((user_id, number))
        if cached is not None:
            return cached
        text = await self._store.get_filter(user_id, number)
        if text is None:
            raise errors.invalid_param("No such filter")
        parsed = parse_filter(json.loads(text))
        self._stored.set((user_id, number), parsed)
        return parsed

    def _resolve_inline(self, text: str) -> FilterCollection:
        cached = self._inline.get(text)
        if cached is not None:
            return cached
        definition = parse_json_text(text, "The filter")
        parsed = parse_filter(definition)
        self._inline.set(text, parsed)
        return parsed
