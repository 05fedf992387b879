"""The upload spool: every byte on disk in order with its size, SHA-256 and head;
the connection paused while the disk is more than 4 MiB behind and resumed once it
catches up; a discarded upload leaves no file behind.

Writes run on real :class:`MediaThreads` with the real reactor.  The transport is a
stand-in recording ``pauseProducing``/``resumeProducing``: the unit here is the
spool's back-pressure logic (real HTTP uploads are covered end to end by the API
tests).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest
import pytest_twisted
from twisted.internet import defer, task

from homeserver.media.spool import HEAD_SIZE, SpooledFile, UploadSpool
from homeserver.media.threads import MediaThreads
from homeserver.reactor import installed_reactor

P = ParamSpec("P")
T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB
#: The spool's documented limit: paused when the disk is more than this behind.
MAX_BACKLOG = 4 * MIB


class TrackedThreads(MediaThreads):
    """Real media threads that also know whether any job is running, so a test can
    wait for the spool's work to settle (``discard`` returns before its file is
    gone) without sleeping."""

    def __init__(self) -> None:
        super().__init__(installed_reactor())
        self._running = 0
        self._finished: list[defer.Deferred[None]] = []

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        self._running += 1
        try:
            return await super().run(func, *args, **kwargs)
        finally:
            self._running -= 1
            finished, self._finished = self._finished, []
            for waiter in finished:
                waiter.callback(None)

    async def idle(self) -> None:
        """Until no job runs, nor is about to be started by the one that just ended
        (the spool chains each job on the last: the next one starts as soon as the
        reactor has delivered the previous one's result)."""
        while True:
            while self._running:
                waiter: defer.Deferred[None] = defer.Deferred()
                self._finished.append(waiter)
                await waiter
            await task.deferLater(installed_reactor(), 0, lambda: None)
            if not self._running:
                return


class RecordingTransport:
    """Stands in for the connection: records flow-control calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")


@pytest.fixture(scope="module")
def threads() -> TrackedThreads:
    return TrackedThreads()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    return tmp_path / "media" / "tmp"


def body(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, in turn, to the end."""
    pieces = []
    offset = 0
    index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[offset : offset + size])
        offset += size
        index += 1
    return pieces


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def assert_complete(spooled: SpooledFile, data: bytes, temp_dir: Path) -> None:
    assert spooled.size == len(data)
    assert spooled.sha256 == hashlib.sha256(data).hexdigest()
    assert spooled.head == data[:HEAD_SIZE]
    assert spooled.path.parent == temp_dir
    assert spooled.path.read_bytes() == data


# -- the file ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_many_small_chunks_make_the_whole_file_with_size_hash_and_head(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(3 * MIB + 12345)
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(data, [1, 7, 1000, 4096, 65536, 100_003]):
        spool.write(piece)
    assert spool.size == len(data)
    spooled = await spool.finish()
    assert_complete(spooled, data, temp_dir)
    assert files_in(temp_dir) == [spooled.path]


@pytest_twisted.ensureDeferred
async def test_chunks_written_across_reactor_turns_stay_in_order(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(2 * MIB + 3, seed=1)
    spool = UploadSpool(threads, temp_dir, transport)
    for index, piece in enumerate(chunks(data, [300 * KIB, 17, 70 * KIB])):
        spool.write(piece)
        if index % 3 == 0:
            await threads.idle()
    assert_complete(await spool.finish(), data, temp_dir)


@pytest_twisted.ensureDeferred
async def test_a_file_smaller_than_the_head_is_all_head(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(b"hello ")
    spool.write(b"world")
    spooled = await spool.finish()
    assert_complete(spooled, b"hello world", temp_dir)
    assert spooled.head == b"hello world"


@pytest_twisted.ensureDeferred
async def test_an_empty_upload_is_an_empty_file(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spooled = await spool.finish()
    assert_complete(spooled, b"", temp_dir)
    assert transport.calls == []


@pytest_twisted.ensureDeferred
async def test_a_write_that_fails_is_raised_by_finish_and_leaves_no_file(
    threads: TrackedThreads, transport: RecordingTransport, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    spool = UploadSpool(threads, not_a_directory / "tmp", transport)
    spool.write(body(MIB))
    with pytest.raises(OSError):
        await spool.finish()
    await threads.idle()
    assert files_in(tmp_path) == [not_a_directory]


# -- back-pressure ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_backlog_beyond_4_mib_pauses_the_connection_until_the_disk_catches_up(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(6 * MIB, seed=2)
    spool = UploadSpool(threads, temp_dir, transport)
    # All in one reactor turn: no write can have finished in between.
    for piece in chunks(data, [64 * KIB]):
        spool.write(piece)
    assert transport.calls == ["pause"]
    spooled = await spool.finish()
    assert transport.calls == ["pause", "resume"]
    assert_complete(spooled, data, temp_dir)


@pytest_twisted.ensureDeferred
async def test_the_connection_is_paused_only_once_however_far_behind(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(12 * MIB, seed=3)
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(data, [256 * KIB]):
        spool.write(piece)
    assert transport.calls == ["pause"]
    assert_complete(await spool.finish(), data, temp_dir)
    assert transport.calls == ["pause", "resume"]


@pytest_twisted.ensureDeferred
async def test_a_backlog_of_at_most_4_mib_never_pauses(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(MAX_BACKLOG, seed=4)
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(data, [128 * KIB]):
        spool.write(piece)
    assert_complete(await spool.finish(), data, temp_dir)
    assert transport.calls == []


@pytest_twisted.ensureDeferred
async def test_a_disk_that_keeps_up_never_pauses_a_large_upload(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(20 * MIB, seed=5)
    spool = UploadSpool(threads, temp_dir, transport)
    for index, piece in enumerate(chunks(data, [256 * KIB])):
        spool.write(piece)
        if index % 8 == 7:  # every 2 MiB the disk catches up
            await threads.idle()
    assert_complete(await spool.finish(), data, temp_dir)
    assert transport.calls == []


@pytest_twisted.ensureDeferred
async def test_a_second_backlog_pauses_again_after_a_resume(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    first, second = body(5 * MIB, seed=6), body(5 * MIB, seed=7)
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(first, [256 * KIB]):
        spool.write(piece)
    await threads.idle()
    assert transport.calls == ["pause", "resume"]
    for piece in chunks(second, [256 * KIB]):
        spool.write(piece)
    assert transport.calls == ["pause", "resume", "pause"]
    assert_complete(await spool.finish(), first + second, temp_dir)
    assert transport.calls == ["pause", "resume", "pause", "resume"]


# -- discarding ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_discard_removes_the_temporary_file(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(body(MIB, seed=8))
    await threads.idle()
    assert len(files_in(temp_dir)) == 1
    spool.discard()
    await threads.idle()
    assert files_in(temp_dir) == []


@pytest_twisted.ensureDeferred
async def test_discard_while_writes_are_in_flight_removes_the_file_once_they_end(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(body(3 * MIB, seed=9), [256 * KIB]):
        spool.write(piece)
    spool.discard()
    await threads.idle()
    assert files_in(temp_dir) == []


@pytest_twisted.ensureDeferred
async def test_discard_resumes_a_paused_connection(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    for piece in chunks(body(5 * MIB, seed=10), [256 * KIB]):
        spool.write(piece)
    assert transport.calls == ["pause"]
    spool.discard()
    assert transport.calls == ["pause", "resume"]
    await threads.idle()
    assert transport.calls == ["pause", "resume"]
    assert files_in(temp_dir) == []


@pytest_twisted.ensureDeferred
async def test_writes_after_discard_are_ignored(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(b"abc")
    spool.discard()
    spool.write(body(MIB))
    assert spool.size == 3
    await threads.idle()
    assert files_in(temp_dir) == []


@pytest_twisted.ensureDeferred
async def test_finish_after_discard_raises(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(body(300 * KIB))
    spool.discard()
    with pytest.raises(RuntimeError, match="discarded"):
        await spool.finish()
    await threads.idle()
    assert files_in(temp_dir) == []


@pytest_twisted.ensureDeferred
async def test_discard_after_finish_leaves_the_file_to_its_new_owner(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    data = body(MIB, seed=11)
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(data)
    spooled = await spool.finish()
    spool.discard()
    await threads.idle()
    assert spooled.path.read_bytes() == data


@pytest_twisted.ensureDeferred
async def test_discarding_twice_is_harmless(
    threads: TrackedThreads, transport: RecordingTransport, temp_dir: Path
) -> None:
    spool = UploadSpool(threads, temp_dir, transport)
    spool.write(body(MIB, seed=12))
    spool.discard()
    spool.discard()
    await threads.idle()
    assert files_in(temp_dir) == []
