"""Media bytes as files under ``media_store_path``, in Synapse's layout.

Also the file handling the S3 backend's local cache shares: turning a key into a
path that cannot leave its root, moving a finished file into place, and pruning
the directories a delete leaves empty.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from homeserver.media.backends.errors import MediaBackendError
from homeserver.media.threads import MediaThreads

#: Under the root: where temporary files are written before ``store`` renames them.
#: No key from :mod:`homeserver.media.keys` starts with it, and none may.
TEMP_DIR_NAME = "tmp"

#: How often moving a file into place is tried when a concurrent delete prunes a
#: directory between our ``mkdir`` and our ``rename``.
_PLACE_ATTEMPTS = 5


def key_path(root: Path, key: str) -> Path:
    """``root / key``: raises ValueError unless ``key`` is a canonical relative path
    (no ``..``, ``.``, empty or doubled components) naming something inside ``root``
    and outside its temporary directory.

    Keys are built from validated IDs, so this never fails for a well-behaved
    caller: it is the last line of defence should one slip through.  Canonical
    matters for the S3 cache as well as for safety: a key is an object name there,
    and two spellings of one path would be two objects sharing one cached file.

    The check is on the text, not ``Path.resolve()``: operators symlink parts of a
    media store onto other disks, which must keep working; only someone with write
    access to the store itself can plant a symlink.
    """
    first = key.split("/", 1)[0]
    if (
        not key
        or "\0" in key
        or os.path.isabs(key)
        or os.path.normpath(key) != key
        or first in (".", "..", TEMP_DIR_NAME)
    ):
        raise ValueError(f"not a media key: {key!r}")
    base = Path(os.path.abspath(root))
    path = Path(os.path.abspath(base / key))
    # Implied by the checks above; kept so that a mistake in them cannot reach a path.
    if base not in path.parents:
        raise ValueError(f"media key {key!r} leaves {base}")
    return path


def fsync_file(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directories(directory: Path) -> list[Path]:
    """Create ``directory`` and any missing parents; the ones this call created."""
    missing = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue  # a concurrent store made it
        created.append(path)
    return created


def move_into_place(source: Path, dest: Path) -> set[Path]:
    """Rename ``source`` (on the same filesystem) to ``dest``, replacing any file
    there and creating missing parent directories.  Returns the directories whose
    entries changed, for a caller that wants the move durable to fsync."""
    changed: set[Path] = set()
    for attempt in range(_PLACE_ATTEMPTS):
        created = _make_directories(dest.parent)
        changed.update(path.parent for path in created)
        try:
            os.replace(source, dest)
        except FileNotFoundError:
            # A delete of the last file in one of these directories removed it
            # after we made (or saw) it: make it again.  Not if the source is gone.
            if attempt == _PLACE_ATTEMPTS - 1 or not source.exists():
                raise
            continue
        except OSError as error:
            if error.errno == errno.EXDEV:
                raise MediaBackendError(
                    f"{source} is not on the same filesystem as {dest}: temporary "
                    "files must be written under the backend's temp_dir()"
                ) from error
            raise
        changed.add(dest.parent)
        return changed
    raise AssertionError("unreachable")


def remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the directories above ``path`` that are now empty, up to (not
    including) ``root``; stops at the first that is not.  Best effort: a directory
    left behind costs an inode, nothing more."""
    directory = path.parent
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (or already pruned by a concurrent delete)
        directory = directory.parent


class FilesystemBackend:
    """Files under ``root``: the default backend, and the one Synapse's media store
    layout lets an existing ``media_store_path`` be served by as it is."""

    def __init__(self, root: Path, threads: MediaThreads) -> None:
        self._root = Path(os.path.abspath(root))
        self._threads = threads
        self._temp = self._root / TEMP_DIR_NAME
        # temp_dir() is synchronous and must name a directory that exists, so it is
        # made here, once, while the server starts (before the reactor serves).
        self._temp.mkdir(parents=True, exist_ok=True)

    def temp_dir(self) -> Path:
        return self._temp

    async def store(self, key: str, source: Path, *, durable: bool = True) -> None:
        """On failure ``source`` is left where it was, for the caller to remove."""
        path = key_path(self._root, key)
        await self._threads.run(self._store, key, source, path, durable)

    def _store(self, key: str, source: Path, path: Path, durable: bool) -> None:
        try:
            # Data first, then the rename, then the directory entries: after a crash
            # the key holds either nothing or the whole file, never a torn one.
            if durable:
                fsync_file(source)
            changed = move_into_place(source, path)
            if durable:
                for directory in changed:
                    fsync_directory(directory)
        except OSError as error:
            raise MediaBackendError(f"could not store media {key!r}: {error}") from error

    async def local_file(self, key: str) -> Path | None:
        path = key_path(self._root, key)
        exists = await self._threads.run(self._is_file, key, path)
        return path if exists else None

    @staticmethod
    def _is_file(key: str, path: Path) -> bool:
        try:
            return path.is_file()
        except OSError as error:  # is_file answers False for missing; this is worse
            raise MediaBackendError(f"could not read media {key!r}: {error}") from error

    async def delete(self, key: str) -> None:
        path = key_path(self._root, key)
        await self._threads.run(self._delete, key, path)

    def _delete(self, key: str, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise MediaBackendError(f"could not delete media {key!r}: {error}") from error
        remove_empty_parents(path, self._root)
