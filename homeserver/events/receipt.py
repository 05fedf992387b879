"""What to do with a PDU received over federation: accept, reject or soft-fail it.

This is the pure decision of server-server-api.md#checks-performed-on-receipt-of-a-pdu
steps 4-6, given the events it needs:

1. format (``homeserver.events.validation.validate_pdu``) - else drop;
2. signatures (``homeserver.events.signing.verify_event_signatures``) - else drop;
3. content hash (``homeserver.events.hashing.check_content_hash``) - else redact
   (``homeserver.events.redaction.prune_event``) and carry on;

are composed by :func:`check_pdu_format_and_signatures`, given the servers' keys
(fetching them is I/O, so the caller's).  Then, in :func:`check_pdu_on_receipt`:

4. the auth rules against the event's own ``auth_events`` - else **reject**;
5. the auth rules against the state before the event - else **reject**;
6. the auth rules against the room's current state - else **soft fail**
   (spec: server-server-api.md#soft-failure).

Step 7 (policy servers) is not covered.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu,
server-server-api.md#rejection, server-server-api.md#soft-failure
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from homeserver.events.auth import AuthError, check_auth_events_selection, check_auth_rules
from homeserver.events.event import Event, StateKey, StateMap
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import check_content_hash
from homeserver.events.redaction import prune_event
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import VerifyKeyWithExpiry, verify_event_signatures

_CREATE_KEY: StateKey = ("m.room.create", "")


class ReceiptStatus(enum.Enum):
    ACCEPTED = "accepted"
    #: Fails auth against its auth events or the state before it: never becomes state,
    #: never shown, never a prev_event of ours.  spec: server-server-api.md#rejection
    REJECTED = "rejected"
    #: Valid but fails against the current state: kept in the DAG and in state
    #: resolution, but not shown to clients nor used as a forward extremity.
    SOFT_FAILED = "soft_failed"


@attrs.frozen
class ReceiptOutcome:
    """The verdict on a received PDU; ``reason`` says which check failed."""

    status: ReceiptStatus
    reason: str | None = None

    ACCEPTED: ClassVar[ReceiptOutcome]

    @classmethod
    def rejected(cls, reason: str) -> ReceiptOutcome:
        return cls(ReceiptStatus.REJECTED, reason)

    @classmethod
    def soft_failed(cls, reason: str) -> ReceiptOutcome:
        return cls(ReceiptStatus.SOFT_FAILED, reason)

    @property
    def is_accepted(self) -> bool:
        return self.status is ReceiptStatus.ACCEPTED

    @property
    def is_rejected(self) -> bool:
        return self.status is ReceiptStatus.REJECTED

    @property
    def is_soft_failed(self) -> bool:
        return self.status is ReceiptStatus.SOFT_FAILED


ReceiptOutcome.ACCEPTED = ReceiptOutcome(ReceiptStatus.ACCEPTED)


@attrs.frozen
class CheckedPdu:
    """A PDU that passed steps 1-2; ``event`` is already redacted if step 3 failed."""

    event: Event
    #: The content hash did not match, so ``event`` is the redacted form.
    redacted_for_bad_hash: bool


def check_pdu_format_and_signatures(
    pdu: dict[str, Any],
    room_version: RoomVersion,
    keys: Mapping[str, Mapping[str, VerifyKeyWithExpiry]],
) -> CheckedPdu:
    """Steps 1-3: format, signatures, content hash.

    Raises :class:`~homeserver.events.errors.InvalidEventError` when the PDU must be
    dropped (malformed, or a required signature missing or invalid).  A content hash
    mismatch is not an error: the event continues in its redacted form.  ``keys`` maps
    server name -> key ID -> key, for every server in ``required_signature_servers``.
    """
    event = event_from_pdu(pdu, room_version)
    verify_event_signatures(pdu, room_version, keys)
    if check_content_hash(pdu):
        return CheckedPdu(event, redacted_for_bad_hash=False)
    return CheckedPdu(prune_event(event), redacted_for_bad_hash=True)


def check_pdu_on_receipt(
    room_version: RoomVersion,
    event: Event,
    auth_events_by_id: Mapping[str, Event],
    state_before: StateMap[Event],
    current_state: StateMap[Event] | None,
) -> ReceiptOutcome:
    """Steps 4-6 of the receipt checks for an event that passed steps 1-3.

    ``auth_events_by_id`` holds (at least) every event ``event`` cites in
    ``auth_events``, with their ``internal.rejected_reason`` set if they were rejected.
    In v12 rooms it should also hold the room's create event (which events do not
    cite); if absent it is taken from ``state_before``.  ``state_before`` is the
    resolved state before the event; ``current_state`` the room's current state, or
    None to skip the soft-failure check (e.g. for backfilled or outlier events).
    """
    outcome = check_pdu_against_auth_events(room_version, event, auth_events_by_id, state_before)
    if not outcome.is_accepted:
        return outcome

    # Step 5: the state before the event, as resolved from its prev_events.
    try:
        check_auth_rules(room_version, event, state_before)
    except AuthError as exc:
        return ReceiptOutcome.rejected(f"state before event: {exc.reason}")

    # Step 6: the current state, so that e.g. a banned user cannot keep talking by
    # pointing prev_events at the DAG from before their ban.
    if current_state is not None:
        try:
            check_auth_rules(room_version, event, current_state)
        except AuthError as exc:
            return ReceiptOutcome.soft_failed(f"current state: {exc.reason}")
    return ReceiptOutcome.ACCEPTED


def check_pdu_against_auth_events(
    room_version: RoomVersion,
    event: Event,
    auth_events_by_id: Mapping[str, Event],
    state_before: StateMap[Event] | None = None,
) -> ReceiptOutcome:
    """Step 4 alone: the event's own auth events, as a list and then as a state.

    All an outlier gets checked against (it has no state before it); the room's
    create event for v12 rooms is looked up as :func:`check_pdu_on_receipt` says.
    """
    try:
        check_auth_events_selection(room_version, event, auth_events_by_id)
        check_auth_rules(
            room_version,
            event,
            _auth_state(room_version, event, auth_events_by_id, state_before or {}),
        )
    except AuthError as exc:
        return ReceiptOutcome.rejected(f"auth events: {exc.reason}")
    return ReceiptOutcome.ACCEPTED


def _auth_state(
    room_version: RoomVersion,
    event: Event,
    auth_events_by_id: Mapping[str, Event],
    state_before: StateMap[Event],
) -> dict[StateKey, Event]:
    """The event's cited auth events as a state map (selection already checked them)."""
    state: dict[StateKey, Event] = {}
    for auth_id in event.auth_event_ids:
        auth_event = auth_events_by_id[auth_id]
        state[auth_event.state_key_tuple] = auth_event
    if room_version.hydra and event.type != "m.room.create":
        room_id = event.room_id
        create_event = (
            auth_events_by_id.get("$" + room_id[1:]) if isinstance(room_id, str) else None
        )
        if create_event is None:
            create_event = state_before.get(_CREATE_KEY)
        if create_event is not None:
            state[_CREATE_KEY] = create_event
    return state
