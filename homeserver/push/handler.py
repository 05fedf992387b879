"""A user's push rules: read, change, and the evaluator that applies them.

What is stored is only the user's *changes* (their own rules, and the enabled flag
or actions they set on server-default rules), as the server-managed global account
data ``m.push_rules``.  Clients always see the resolved ruleset (defaults merged with
those changes), through ``GET /pushrules/`` and as the content of ``m.push_rules``
in ``/sync`` and the account data API; so a server upgrade that brings new default
rules reaches every user at once.  Each change is one read-modify-write transaction
on the account data stream, which also wakes the user's ``/sync``.

spec: client-server-api/modules/push.md#push-rules, #push-rules-api, #push-rules-events
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeserver import errors
from homeserver.accountdata.handler import AccountDataHandler
from homeserver.push.evaluator import PushRuleEvaluator
from homeserver.push.room_copy import copy_room_rules
from homeserver.push.rules import (
    Customisations,
    PushRule,
    PushRuleError,
    Ruleset,
    add_or_replace,
    check_kind,
    delete,
    resolve,
    set_actions,
    set_enabled,
)
from homeserver.util.caches import LruCache

PUSH_RULES = "m.push_rules"


class PushRulesHandler:
    def __init__(self, account_data: AccountDataHandler, *, cache_size: int = 10_000) -> None:
        self._account_data = account_data
        #: user ID -> evaluator of their resolved rules.  This handler is the only
        #: writer of ``m.push_rules`` (clients cannot set it as account data), so an
        #: entry stays right until :meth:`_change` drops it.
        self._evaluators: LruCache[str, PushRuleEvaluator] = LruCache(cache_size)
        #: Bumped by every change, so a read that overlapped one is not cached.
        self._generation = 0
        account_data.manage(PUSH_RULES, self._present)

    def _present(self, user_id: str, stored: dict[str, Any] | None) -> dict[str, Any]:
        return resolve(user_id, Customisations.from_json(stored)).to_json()

    async def ruleset(self, user_id: str) -> Ruleset:
        stored = await self._account_data.get_stored_global(user_id, PUSH_RULES)
        return resolve(user_id, Customisations.from_json(stored))

    async def evaluator(self, user_id: str) -> PushRuleEvaluator:
        """The user's rules, ready to evaluate events (read and built once per change,
        not on every ``/sync``)."""
        cached = self._evaluators.get(user_id)
        if cached is not None:
            return cached
        generation = self._generation
        evaluator = PushRuleEvaluator(await self.ruleset(user_id))
        if generation == self._generation:
            self._evaluators.set(user_id, evaluator)
        return evaluator

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        try:
            check_kind(kind)
        except PushRuleError as refused:
            raise _matrix_error(refused) from None
        rule = (await self.ruleset(user_id)).find(kind, rule_id)
        if rule is None:
            raise errors.not_found(f"No push rule {rule_id!r} of kind {kind!r}")
        return rule

    async def put_rule(
        self,
        user_id: str,
        kind: str,
        rule_id: str,
        body: object,
        *,
        before: str | None,
        after: str | None,
    ) -> None:
        await self._change(
            user_id,
            lambda current: add_or_replace(
                current, user_id, kind, rule_id, body, before=before, after=after
            ),
        )

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        await self._change(user_id, lambda current: delete(current, user_id, kind, rule_id))

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._change(
            user_id, lambda current: set_enabled(current, user_id, kind, rule_id, enabled)
        )

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: object) -> None:
        await self._change(
            user_id, lambda current: set_actions(current, user_id, kind, rule_id, actions)
        )

    async def copy_room_rules(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """Give the user's rules about an upgraded room to its successor
        (:func:`homeserver.push.room_copy.copy_room_rules`).

        spec: client-server-api/modules/room_upgrades.md ("Server behaviour")
        """
        await self._change(
            user_id, lambda current: copy_room_rules(current, old_room_id, new_room_id)
        )

    async def _change(self, user_id: str, edit: Callable[[Customisations], Customisations]) -> None:
        def update(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            before = Customisations.from_json(stored)
            after = edit(before)
            return None if after == before else after.to_json()

        try:
            await self._account_data.update_global(user_id, PUSH_RULES, update)
        except PushRuleError as refused:
            raise _matrix_error(refused) from None
        finally:
            self._generation += 1
            self._evaluators.invalidate(user_id)


def _matrix_error(refused: PushRuleError) -> errors.MatrixError:
    return errors.MatrixError(refused.status, refused.errcode, refused.message)
