"""State resolution: merging the room states of several forks of the room DAG into one.

spec: rooms/v1.md#state-resolution, rooms/fragments/v2-state-res.md, rooms/v12.md#state-resolution

Pure: the caller supplies every event needed in ``event_map`` (``event_id -> Event``).
If one is missing, :class:`MissingEventsError` names it (and any others found on the
way) so the caller can fetch them and call again.  Pass the same
:class:`AuthChainIndex` to successive calls for a room to reuse its memoised auth
chains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.room_versions import RoomVersion, StateResAlgorithm
from homeserver.events.state_res.auth_chain import AuthChainIndex
from homeserver.events.state_res.errors import MissingEventsError
from homeserver.events.state_res.v1 import resolve_v1
from homeserver.events.state_res.v2 import resolve_v2

__all__ = ["AuthChainIndex", "MissingEventsError", "resolve_state"]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap[str]],
    event_map: Mapping[str, Event],
    auth_chains: AuthChainIndex | None = None,
) -> dict[StateKey, str]:
    """The resolution of ``state_sets`` (each ``(type, state_key) -> event_id``).

    Dispatches on ``room_version.state_res``.  Returns a new dict; the inputs are not
    modified.  Raises MissingEventsError if an event needed is not in ``event_map``.
    """
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    algorithm = room_version.state_res
    if algorithm is StateResAlgorithm.V1:
        return resolve_v1(room_version, state_sets, event_map)
    if auth_chains is None:
        auth_chains = AuthChainIndex(event_map)
    return resolve_v2(room_version, state_sets, event_map, auth_chains)
