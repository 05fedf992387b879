"""Building the web client from ``web-client/`` when it is missing or stale.

The README's run command must give a working app on a fresh machine, and the build
output is not committed; so ``homeserver`` (with ``web_client.build: auto``) builds
it before the reactor starts, and ``homeserver build-web-client`` does on demand:
``npm ci`` when ``node_modules`` is missing or older than ``package-lock.json``,
then ``npm run build`` (type check and ``vite build``), then a ``.gz`` beside each
compressible file.  Without Node/npm, or when a step fails, one warning says why and
the server starts anyway, answering ``/`` with its landing page.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from homeserver.config.web_client import WebClientConfig
from homeserver.webclient.assets import precompress

logger = logging.getLogger(__name__)

#: What a build is made from, relative to ``web-client/``: folders are walked.
SOURCES = (
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
)
#: ``npm ci`` downloads a few hundred megabytes on a slow line; the build takes
#: about a minute.
_INSTALL_TIMEOUT = 30 * 60
_BUILD_TIMEOUT = 15 * 60


class BuildFailed(Exception):
    """A build that could not be done; the message says why, in one line."""


@attrs.frozen
class BuildPlan:
    install: bool
    build: bool


def newest_mtime(paths: Iterable[Path]) -> float | None:
    """The newest modification time of the files (in the folders) named; None if
    none exists."""
    newest: float | None = None
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            try:
                mtime = file.stat().st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest:
                newest = mtime
    return newest


def plan(
    *,
    built: float | None,
    sources: float | None,
    installed: float | None,
    lockfile: float | None,
) -> BuildPlan:
    """What to do, from modification times (None: missing).

    ``built``: the build's ``index.html``; ``sources``: the newest source file;
    ``installed``: ``node_modules/.package-lock.json`` (npm writes it on each
    install); ``lockfile``: ``package-lock.json``.
    """
    install = installed is None or (lockfile is not None and installed < lockfile)
    build = built is None or (sources is not None and built < sources)
    # A fresh install with an up-to-date build needs no rebuild: same lockfile.
    return BuildPlan(install=install and build, build=build)


def plan_for(sources_dir: Path, dist: Path) -> BuildPlan:
    return plan(
        built=newest_mtime([dist / "index.html"]),
        sources=newest_mtime(sources_dir / name for name in SOURCES),
        installed=newest_mtime([sources_dir / "node_modules" / ".package-lock.json"]),
        lockfile=newest_mtime([sources_dir / "package-lock.json"]),
    )


def build_web_client(
    sources_dir: Path,
    dist: Path,
    *,
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Build the app in ``sources_dir`` into ``dist`` if it is missing or stale (or
    ``force``); whether a build was made.  Raises :class:`BuildFailed`."""
    if not (sources_dir / "package.json").is_file():
        raise BuildFailed(f"no web client sources at {sources_dir} (package.json is missing)")
    steps = plan_for(sources_dir, dist)
    if not (steps.build or force):
        logger.info("the web client in %s is up to date", dist)
        return False
    environment = dict(os.environ if env is None else env)
    npm = shutil.which("npm", path=environment.get("PATH"))
    if npm is None:
        raise BuildFailed("npm is not installed (the web client needs Node.js 20 or newer)")
    first = not (dist / "index.html").exists()
    logger.info(
        "building the web client%s",
        " (first start: about a minute)" if first else " (its sources changed)",
    )
    if steps.install or not (sources_dir / "node_modules").is_dir():
        logger.info("installing the web client's packages (npm ci)")
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], sources_dir,
             environment, _INSTALL_TIMEOUT)  # fmt: skip
    # Built beside dist/ and swapped in whole: a failed build leaves the previous one
    # served, and a running server never sees half a build.
    staging = dist.with_name(f".{dist.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _run([npm, "run", "build", "--", "--outDir", str(staging), "--emptyOutDir"],
             sources_dir, environment, _BUILD_TIMEOUT)  # fmt: skip
        if not (staging / "index.html").is_file():
            raise BuildFailed(f"npm run build made no {staging / 'index.html'}")
        compressed = precompress(staging)
        _swap_in(staging, dist)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("built the web client into %s (%d files gzipped)", dist, compressed)
    return True


def _swap_in(staging: Path, dist: Path) -> None:
    """Replace ``dist`` with ``staging`` (two renames; the old build is then removed)."""
    old = dist.with_name(f".{dist.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dist.exists():
        dist.rename(old)
    staging.rename(dist)
    shutil.rmtree(old, ignore_errors=True)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    shown = " ".join(Path(command[0]).name if i == 0 else part for i, part in enumerate(command))
    try:
        finished = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"{shown} took longer than {timeout:.0f} s") from None
    except OSError as error:
        raise BuildFailed(f"cannot run {shown}: {error}") from None
    if finished.returncode != 0:
        output = (finished.stderr.strip() or finished.stdout.strip()).splitlines()
        # The end of the output is where npm, tsc and vite say what went wrong.
        tail = "".join(f"\n  {line}" for line in output[-20:])
        raise BuildFailed(f"{shown} failed with status {finished.returncode}{tail}")


def build_before_start(config: WebClientConfig) -> None:
    """The run command's step before listening: build when ``build`` is ``auto``;
    a failure is one warning, never a reason not to start."""
    sources_dir, dist = config.sources, config.directory
    if not config.enabled or config.build != "auto" or sources_dir is None or dist is None:
        return
    try:
        build_web_client(sources_dir, dist)
    except BuildFailed as failed:
        reason, _, output = str(failed).partition("\n")
        logger.warning(
            "the web client was not built: %s; serving the landing page at / instead "
            "(build it with: homeserver build-web-client)%s",
            reason,
            "\n" + output if output else "",
        )
