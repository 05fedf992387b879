"""Building the web client: when a build is due, and a server that starts anyway
when it cannot build (no npm, a failing build)."""

from __future__ import annotations

import logging
import stat
import sys
from pathlib import Path

import pytest
import yaml

from homeserver.config.web_client import WebClientConfig
from homeserver.webclient.build import (
    BuildFailed,
    BuildPlan,
    build_before_start,
    build_web_client,
    plan,
)
from tests.support import http
from tests.support.server_process import ServerProcess, free_port, run_command, server_config
from tests.webclient.conftest import sqlite


def test_a_missing_build_is_built_after_installing_missing_packages() -> None:
    assert plan(built=None, sources=10, installed=None, lockfile=5) == BuildPlan(True, True)
    assert plan(built=None, sources=10, installed=8, lockfile=5) == BuildPlan(False, True)


def test_a_build_older_than_any_source_is_rebuilt() -> None:
    assert plan(built=9, sources=10, installed=8, lockfile=5) == BuildPlan(False, True)


def test_an_up_to_date_build_is_left_alone_even_with_stale_packages() -> None:
    assert plan(built=11, sources=10, installed=8, lockfile=5) == BuildPlan(False, False)
    assert plan(built=11, sources=10, installed=4, lockfile=5) == BuildPlan(False, False)


def test_packages_older_than_the_lockfile_are_reinstalled_before_a_build() -> None:
    assert plan(built=9, sources=10, installed=4, lockfile=5) == BuildPlan(True, True)


def sources(tmp_path: Path) -> Path:
    """A web-client/ folder with sources and no build."""
    folder = tmp_path / "web-client"
    (folder / "src").mkdir(parents=True)
    (folder / "package.json").write_text('{"name": "x", "scripts": {"build": "vite build"}}')
    (folder / "src" / "main.tsx").write_text("export {};\n")
    return folder


def fake_npm(folder: Path, script: str) -> Path:
    """A folder holding an ``npm`` that runs ``script`` (a shell script body)."""
    folder.mkdir(exist_ok=True)
    npm = folder / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    return folder


def test_without_npm_the_build_fails_saying_node_is_needed(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    with pytest.raises(BuildFailed, match="npm is not installed"):
        build_web_client(folder, folder / "dist", env={"PATH": str(tmp_path / "empty")})


def test_a_failing_build_is_one_warning_with_its_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = sources(tmp_path)
    script = (
        'if [ "$1" = ci ]; then exit 0; fi\necho "src/main.tsx(1,1): error TS1005" >&2\nexit 2\n'
    )
    bin_dir = fake_npm(tmp_path / "bin", script)
    config = WebClientConfig(directory=folder / "dist", build="auto")
    with caplog.at_level(logging.INFO), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(bin_dir))
        build_before_start(config)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("the web client was not built: npm run build")
    assert "failed with status 2" in warnings[0]
    assert "error TS1005" in warnings[0]
    assert not (folder / "dist").exists()


def test_a_successful_build_is_precompressed(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    # Stands in for npm: "ci" makes node_modules, "run build -- --outDir D" writes D.
    script = (
        'if [ "$1" = ci ]; then mkdir -p node_modules && touch node_modules/.package-lock.json; '
        "exit 0; fi\n"
        'out=""; while [ $# -gt 0 ]; do [ "$1" = --outDir ] && out="$2"; shift; done\n'
        'mkdir -p "$out/assets" && echo "<!doctype html>" > "$out/index.html"\n'
        'yes "console.log(1);" | head -n 200 > "$out/assets/app-1.js"\n'
    )
    bin_dir = fake_npm(tmp_path / "bin", script)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert build_web_client(folder, folder / "dist", env=env)
    assert (folder / "node_modules").is_dir()
    assert (folder / "dist" / "assets" / "app-1.js.gz").is_file()
    # Up to date now: nothing to do.
    assert not build_web_client(folder, folder / "dist", env=env)
    # A failed rebuild leaves the previous build in place, whole.
    fake_npm(bin_dir, 'out=""; while [ $# -gt 0 ]; do [ "$1" = --outDir ] && out="$2"; shift; done\n'
             'mkdir -p "$out" && echo partial > "$out/index.html"; exit 1\n')  # fmt: skip
    with pytest.raises(BuildFailed):
        build_web_client(folder, folder / "dist", env=env, force=True)
    assert (folder / "dist" / "index.html").read_text() == "<!doctype html>\n"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_a_server_that_cannot_build_starts_with_the_landing_page(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    config = server_config(tmp_path, sqlite(tmp_path), free_port())
    config["web_client"] = {"directory": str(folder / "dist"), "build": "auto"}
    server = ServerProcess(tmp_path, config)
    (tmp_path / "empty").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # Python itself stays reachable; npm does not.
        patch.setenv("PATH", f"{tmp_path / 'empty'}:{Path(sys.executable).parent}")
        server.start(build_web_client=True)
    try:
        page = http.request(server.base_url, "GET", "/")
    finally:
        server.stop()
    assert page.status == 200
    assert "homeserver build-web-client" in page.body.decode()
    log = server.log()
    assert "the web client was not built: npm is not installed" in log


def test_the_build_command_builds_on_demand_and_says_what_it_did(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    config = server_config(tmp_path, sqlite(tmp_path), free_port())
    config["web_client"] = {"directory": str(folder / "dist")}
    config_path = tmp_path / "homeserver.yaml"
    config_path.write_text(yaml.safe_dump(config))
    (tmp_path / "empty").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{tmp_path / 'empty'}:{Path(sys.executable).parent}")
        failed = run_command(["build-web-client", "-c", str(config_path)], cwd=tmp_path)
    assert failed.returncode == 1
    assert "the web client was not built: npm is not installed" in failed.stderr
    config["web_client"] = {"directory": str(tmp_path / "elsewhere" / "dist")}
    config_path.write_text(yaml.safe_dump(config))
    nothing = run_command(["build-web-client", "-c", str(config_path)], cwd=tmp_path)
    assert nothing.returncode == 1
    assert "no web client sources to build" in nothing.stderr
