"""The end-to-end encryption workloads, run the same way against each server.

Setup (untimed): user A (one device) and user B with ``devices`` devices (the
registration's device plus logins), each of B's devices uploading signed device keys
and enough signed one-time keys for every claim; B's cross-signing keys
(``/keys/device_signing/upload``, answering user-interactive auth with the password
if asked) and each of B's devices signed by B's self-signing key
(``/keys/signatures/upload``).  A server that answers 404 to the cross-signing
endpoints runs without them, with a note in the report.

(a) ``keys_query``: A's ``POST /keys/query`` for B (all devices): median, p95.
(b) ``keys_claim``: A's ``POST /keys/claim`` of one ``signed_curve25519`` key for each
    of B's devices in one request: median, p95 (every claimed key must be new).
(c) ``to_device_one`` / ``to_device_fanout``: ``senders`` users at once, each sending
    one request after another: ``PUT /sendToDevice/m.test/{txn}`` to one of B's
    devices (sender *s*'s message *k* to device (*s* + *k*) mod ``devices``), or to
    ``*`` (all of B's devices); requests per second over the burst (and deliveries
    per second).  Then every device of B drains its inbox through ``/sync`` and the
    messages are counted: all must arrive, none twice.
(d) ``inbox_sync``: ``pending`` messages are queued (untimed) for each of
    ``inbox_devices`` fresh devices of user D; each device then does an initial
    ``/sync`` (no ``since``, a filter that leaves rooms out): the time of that first
    response, and the time until the inbox is drained by following ``next_batch``
    (servers hand out 100 messages per response) up to the response that brings none.

spec: client-server-api/modules/end_to_end_encryption.md, send_to_device.md
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import attrs

from bench.client_api.client import CLIENT_PREFIX, Client, RequestFailed
from bench.client_api.servers import ServerUnderTest
from bench.client_api.workloads import bounded, latency_figures
from bench.e2ee import to_device
from bench.e2ee.devices import (
    OTK_ALGORITHM,
    CrossSigning,
    SigningDevice,
    log_in,
    post_with_password,
    whoami_device,
)


@attrs.frozen
class E2eeSizes:
    """The knobs of every workload (the command's flags)."""

    devices: int = 20
    repeats: int = 100
    warmup: int = 10
    senders: int = 20
    messages_per_sender: int = 50
    fanout_messages_per_sender: int = 10
    payload_bytes: int = 512
    pending: int = 1000
    inbox_devices: int = 5
    setup_concurrency: int = 4


class E2eeRun:
    """The accounts, devices and keys on one server, and the timed workloads."""

    def __init__(self, server: ServerUnderTest, http: aiohttp.ClientSession, sizes: E2eeSizes):
        self.server = server
        self.sizes = sizes
        self.anonymous = Client(http, server.base_url)
        self.ciphertext = to_device.padding(sizes.payload_bytes)
        #: What the report should say about this server's setup (e.g. a missing endpoint).
        self.notes: list[str] = []
        self.cross_signing = False
        self.device_signatures = False
        #: B's devices' sync tokens: each drain acknowledges what the last one read.
        self._since: dict[str, str | None] = {}

    async def _user(self, name: str) -> Client:
        account = await self.anonymous.register_with_secret(name, self.server.shared_secret)
        return self.anonymous.as_user(account)

    async def _devices(self, name: str, count: int) -> list[SigningDevice]:
        """A new user with ``count`` devices: the registration's and ``count - 1`` logins."""
        first = await self._user(name)
        devices = [SigningDevice.of(first, await whoami_device(first))]
        devices += await bounded(
            self.sizes.setup_concurrency,
            [
                partial(log_in, self.anonymous, first.user_id, f"{name} device {number}")
                for number in range(1, count)
            ],
        )
        return devices

    # -- setup -------------------------------------------------------------------------

    async def setup(self) -> None:
        sizes = self.sizes
        self.querier = await self._user("e2ee_a")
        self.b_devices = await self._devices("e2ee_b", sizes.devices)
        self.b_user = self.b_devices[0].user_id
        self._since = {device.device_id: None for device in self.b_devices}
        one_time_keys = sizes.warmup + sizes.repeats
        await bounded(
            sizes.setup_concurrency,
            [partial(device.upload_keys, one_time_keys) for device in self.b_devices],
        )
        await self._upload_cross_signing()
        self.senders = await bounded(
            sizes.setup_concurrency,
            [partial(self._user, f"e2ee_sender_{number}") for number in range(sizes.senders)],
        )

    async def _upload_cross_signing(self) -> None:
        owner = self.b_devices[0].client
        keys = CrossSigning.generate(self.b_user)
        try:
            await post_with_password(
                owner, f"{CLIENT_PREFIX}/keys/device_signing/upload", keys.upload_body()
            )
        except RequestFailed as failed:
            if failed.status != 404:
                raise
            self.notes.append(f"no cross-signing: /keys/device_signing/upload answered {failed}")
            return
        self.cross_signing = True
        path = f"{CLIENT_PREFIX}/keys/signatures/upload"
        try:
            answer = (await owner.call("POST", path, keys.device_signatures(self.b_devices)))[0]
        except RequestFailed as failed:
            if failed.status != 404:
                raise
            self.notes.append(
                f"devices not cross-signed: /keys/signatures/upload answered {failed}"
            )
            return
        if answer.get("failures"):
            raise RuntimeError(f"/keys/signatures/upload failures: {answer['failures']}")
        self.device_signatures = True

    # -- (a), (b) ---------------------------------------------------------------------

    async def _timed(
        self, request: Callable[[], Awaitable[tuple[dict[str, Any], int]]]
    ) -> tuple[list[float], list[dict[str, Any]], int]:
        """``warmup`` untimed then ``repeats`` timed calls: timings, bodies, last size."""
        bodies = []
        timings = []
        size = 0
        for number in range(self.sizes.warmup + self.sizes.repeats):
            start = time.perf_counter()
            body, size = await request()
            if number >= self.sizes.warmup:
                timings.append(time.perf_counter() - start)
            bodies.append(body)
        return timings, bodies, size

    async def keys_query(self) -> dict[str, Any]:
        body = {"device_keys": {self.b_user: []}, "timeout": 10_000}
        path = f"{CLIENT_PREFIX}/keys/query"
        timings, bodies, size = await self._timed(partial(self.querier.call, "POST", path, body))
        self._check_query(bodies[-1])
        figures: dict[str, Any] = latency_figures(timings)
        figures.update(
            devices=len(bodies[-1]["device_keys"][self.b_user]),
            cross_signing=self.cross_signing,
            device_signatures=self.device_signatures,
            response_bytes=size,
        )
        return figures

    def _check_query(self, answer: dict[str, Any]) -> None:
        served = answer.get("device_keys", {}).get(self.b_user, {})
        if set(served) != {device.device_id for device in self.b_devices}:
            raise RuntimeError(
                f"/keys/query lists {len(served)} of B's devices, not {len(self.b_devices)}"
            )
        if self.cross_signing and self.b_user not in answer.get("master_keys", {}):
            raise RuntimeError("/keys/query does not list B's master key")
        if self.device_signatures:
            unsigned = [
                device_id
                for device_id, keys in served.items()
                if len(keys.get("signatures", {}).get(self.b_user, {})) < 2
            ]
            if unsigned:
                raise RuntimeError(f"{len(unsigned)} devices lack their self-signing signature")

    async def keys_claim(self) -> dict[str, Any]:
        wanted = {device.device_id: OTK_ALGORITHM for device in self.b_devices}
        body = {"one_time_keys": {self.b_user: wanted}, "timeout": 10_000}
        path = f"{CLIENT_PREFIX}/keys/claim"
        timings, bodies, size = await self._timed(partial(self.querier.call, "POST", path, body))
        claimed = Counter(
            (device_id, key_id)
            for answer in bodies
            for device_id, keys in answer.get("one_time_keys", {}).get(self.b_user, {}).items()
            for key_id in keys
        )
        expected = len(bodies) * len(self.b_devices)
        if len(claimed) != expected or claimed.total() != expected:
            raise RuntimeError(
                f"{len(claimed)} distinct one-time keys claimed, {expected} expected"
            )
        figures: dict[str, Any] = latency_figures(timings)
        figures.update(keys_per_request=len(self.b_devices), response_bytes=size)
        return figures

    # -- (c) --------------------------------------------------------------------------

    def _message(self, phase: str, sender: int, number: int) -> dict[str, Any]:
        return to_device.content(phase, sender, number, self.ciphertext)

    async def _send_all(
        self, phase: str, count: int, sent: dict[str, Counter[str]], *, fan_out: bool
    ) -> None:
        """Every sender sends ``count`` messages, one after another, all senders at once;
        ``sent`` counts what each of B's devices should receive."""
        devices = [device.device_id for device in self.b_devices]

        async def one_sender(index: int, sender: Client) -> None:
            for number in range(count):
                target = "*" if fan_out else devices[(index + number) % len(devices)]
                message = self._message(phase, index, number)
                await to_device.send(sender, f"{phase}.{number}", {self.b_user: {target: message}})
                for device_id in devices if fan_out else [target]:
                    sent[device_id][phase] += 1

        await asyncio.gather(*(one_sender(index, s) for index, s in enumerate(self.senders)))

    async def _burst(self, phase: str, count: int, *, fan_out: bool) -> dict[str, Any]:
        sent: dict[str, Counter[str]] = {device.device_id: Counter() for device in self.b_devices}
        # Untimed: every sender's connection is open before the burst.
        await self._send_all(f"{phase}-warmup", 1, sent, fan_out=fan_out)
        start = time.perf_counter()
        await self._send_all(phase, count, sent, fan_out=fan_out)
        elapsed = time.perf_counter() - start
        verify_start = time.perf_counter()
        received = await self._drain_b(sent)
        requests = count * len(self.senders)
        deliveries = requests * (len(self.b_devices) if fan_out else 1)
        return {
            "messages_per_second": requests / elapsed,
            "deliveries_per_second": deliveries / elapsed,
            "messages": requests,
            "deliveries": deliveries,
            "seconds": elapsed,
            "received": received,
            "verify_seconds": time.perf_counter() - verify_start,
        }

    async def _drain_b(self, expected: dict[str, Counter[str]]) -> int:
        """Every device of B reads its inbox; raises unless each got exactly what was
        sent to it.  Returns how many timed-phase messages arrived in all."""

        async def check(device: SigningDevice) -> int:
            drained = await to_device.drain(device.client, self._since[device.device_id])
            self._since[device.device_id] = drained.since
            got, wanted = drained.by_phase(), expected[device.device_id]
            if got != wanted or drained.duplicates():
                raise RuntimeError(
                    f"device {device.device_id} received {dict(got)} "
                    f"({drained.duplicates()} duplicates), expected {dict(wanted)}"
                )
            return sum(count for phase, count in got.items() if not phase.endswith("-warmup"))

        counts = await bounded(
            self.sizes.setup_concurrency, [partial(check, device) for device in self.b_devices]
        )
        return sum(counts)

    async def to_device_one(self) -> dict[str, Any]:
        return await self._burst("one", self.sizes.messages_per_sender, fan_out=False)

    async def to_device_fanout(self) -> dict[str, Any]:
        return await self._burst("fanout", self.sizes.fanout_messages_per_sender, fan_out=True)

    # -- (d) --------------------------------------------------------------------------

    async def inbox_sync(self) -> dict[str, Any]:
        sizes = self.sizes
        inbox = await self._devices("e2ee_inbox", sizes.inbox_devices)
        recipient = inbox[0].user_id
        fill_start = time.perf_counter()

        async def fill(index: int, sender: Client) -> None:
            for number in range(index, sizes.pending, len(self.senders)):
                message = self._message("inbox", index, number)
                messages = {recipient: {device.device_id: message for device in inbox}}
                await to_device.send(sender, f"inbox.{number}", messages)

        await asyncio.gather(*(fill(index, s) for index, s in enumerate(self.senders)))
        fill_seconds = time.perf_counter() - fill_start
        firsts, drains, pages, first_pages = [], [], [], []
        for device in inbox:
            drained = await to_device.drain(device.client, None)
            if drained.by_phase() != Counter({"inbox": sizes.pending}) or drained.duplicates():
                raise RuntimeError(
                    f"inbox device {device.device_id} received {dict(drained.by_phase())} "
                    f"({drained.duplicates()} duplicates), expected {sizes.pending}"
                )
            firsts.append(drained.first_seconds)
            drains.append(drained.seconds)
            pages.append(drained.pages)
            first_pages.append(drained.first_page)
        first, whole = latency_figures(firsts), latency_figures(drains)
        return {
            **{f"first_{key}": value for key, value in first.items()},
            **{f"drain_{key}": value for key, value in whole.items()},
            "pending": sizes.pending,
            "pages": max(pages),
            "first_response_messages": min(first_pages),
            "fill_messages_per_second": sizes.pending / fill_seconds,
        }


#: Workload name -> the method that runs it, in the order they run.
WORKLOADS: dict[str, Callable[[E2eeRun], Awaitable[dict[str, Any]]]] = {
    "keys_query": E2eeRun.keys_query,
    "keys_claim": E2eeRun.keys_claim,
    "to_device_one": E2eeRun.to_device_one,
    "to_device_fanout": E2eeRun.to_device_fanout,
    "inbox_sync": E2eeRun.inbox_sync,
}
