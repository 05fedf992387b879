"""The ``homeserver.yaml`` keys Synapse documents, read from a pinned Synapse release.

    python -m synapse_compat.config_keys [SDIST_OR_DOC]

writes ``homeserver/config/synapse_config_keys.json``, which
``homeserver.config.synapse_keys`` reads: every key Synapse documents is accepted in
our config (with a warning when we do not act on it), any other unknown key is an
error.  Nothing in that file is edited by hand; run this again to move to another
Synapse release.

Synapse keeps its config schema in ``schema/synapse-config.schema.yaml`` in its
repository but does not ship it in the PyPI sdist; the sdist does ship
``docs/usage/configuration/config_documentation.md``, which Synapse generates from
that schema, so this reads the markdown:

- each ``### `key``` heading is a top-level key;
- a bullet ``* `name` (type): ...`` in its body is a sub-key, nested by indentation
  (two spaces a level: sub-options of objects and of list entries alike);
- the bullets after ``Valid resource names are:`` (in ``listeners``) are the listener
  resource names;
- the first YAML block after ``Example configuration`` is the key's example (or,
  for keys with none, the block after ``Default configuration``).

``SDIST_OR_DOC`` is the sdist (``matrix_synapse-X.tar.gz``) or the markdown file
itself; without it the pinned release's sdist is downloaded with
``pip download --no-deps --no-binary :all: matrix-synapse==X``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

#: The Synapse release we are compatible with (also what the benchmarks compare with).
SYNAPSE_RELEASE = "1.163.2"
DOC_PATH_IN_SDIST = "docs/usage/configuration/config_documentation.md"
OUTPUT = Path(__file__).resolve().parents[1] / "homeserver" / "config" / "synapse_config_keys.json"

_HEADING = re.compile(r"^### `([^`]+)`\s*$")
_SUB_KEY = re.compile(r"^( *)\* `([^`]+)` \(([^)]*)\):")
_RESOURCE_NAME = re.compile(r"^\* `([a-z_]+)`:")
_FENCE = re.compile(r"^```")

Tree = dict[str, Any]


class DocumentError(Exception):
    pass


def read_documentation(source: Path) -> tuple[str, str]:
    """The markdown and a description of where it came from."""
    if source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source) as archive:
            for member in archive.getmembers():
                # The sdist's single top folder, then the documentation's path.
                if member.name.split("/", 1)[-1] == DOC_PATH_IN_SDIST:
                    stream = archive.extractfile(member)
                    if stream is None:
                        break
                    return stream.read().decode("utf-8"), f"{source.name}:{DOC_PATH_IN_SDIST}"
        raise DocumentError(f"{source} has no {DOC_PATH_IN_SDIST}")
    return source.read_text("utf-8"), source.name


def parse_documentation(markdown: str) -> tuple[Tree, list[str], dict[str, Any]]:
    """(key tree, listener resource names, examples) from the generated markdown."""
    tree: Tree = {}
    resource_names: list[str] = []
    examples: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    key: str | None = None
    # The sub-key tree of the current key, one dict per indentation level.
    stack: list[Tree] = []
    in_resource_names = False
    fence: list[str] | None = None
    want_example: dict[str, Any] | None = None
    for line in markdown.splitlines():
        if fence is not None:
            if _FENCE.match(line.strip()):
                if want_example is not None and key is not None and key not in want_example:
                    loaded = yaml.safe_load("\n".join(fence))
                    if isinstance(loaded, dict) and key in loaded:
                        want_example[key] = loaded[key]
                want_example = None
                fence = None
            else:
                fence.append(line)
            continue
        if _FENCE.match(line.strip()):
            fence = []
            continue
        heading = _HEADING.match(line)
        if heading:
            key = heading.group(1)
            tree[key] = {}
            stack = [tree[key]]
            in_resource_names = False
            want_example = None
            continue
        if line.startswith("#"):
            # A section heading ("## Media Store"): no key is being described.
            key = None
            continue
        if key is None:
            continue
        if line.startswith("Example configuration"):
            want_example = examples
        elif line.startswith("Default configuration"):
            want_example = defaults
        elif line.startswith("Valid resource names are:"):
            in_resource_names = True
        elif in_resource_names and line.startswith("Defaults to"):
            in_resource_names = False
        elif in_resource_names and (match := _RESOURCE_NAME.match(line)):
            resource_names.append(match.group(1))
        elif match := _SUB_KEY.match(line):
            level = len(match.group(1)) // 2
            if level >= len(stack):
                raise DocumentError(f"{key}: sub-key {match.group(2)!r} nested too deep")
            del stack[level + 1 :]
            node: Tree = stack[level].setdefault(match.group(2), {})
            stack.append(node)
    if not tree:
        raise DocumentError("no '### `key`' headings found: not Synapse's config documentation")
    return tree, resource_names, {**defaults, **examples}


def build(markdown: str, *, release: str, source: str, command: str) -> dict[str, Any]:
    tree, resource_names, examples = parse_documentation(markdown)
    return {
        "generated": "DO NOT EDIT: generated by synapse_compat/config_keys.py",
        "synapse_release": release,
        "source": source,
        "command": command,
        "listener_resource_names": resource_names,
        "keys": tree,
        "examples": examples,
    }


def download_sdist(release: str, folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"matrix-synapse=={release}",
            "-d",
            str(folder),
        ],
        check=True,
    )
    (sdist,) = folder.glob("matrix_synapse-*.tar.gz")
    return sdist


def _release_of(source: Path) -> str | None:
    match = re.match(r"matrix_synapse-(\d+\.\d+\.\d+)\.tar\.gz$", source.name)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synapse_compat.config_keys", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        help="Synapse sdist or config_documentation.md "
        f"(default: download matrix-synapse=={SYNAPSE_RELEASE})",
    )
    parser.add_argument(
        "--release",
        default=None,
        help=f"the Synapse release the source is (default: from the sdist's name, else {SYNAPSE_RELEASE})",
    )
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.source is None:
            release = args.release or SYNAPSE_RELEASE
            source = download_sdist(release, Path(scratch))
            command = "python -m synapse_compat.config_keys"
        else:
            source = args.source
            release = args.release or _release_of(source) or SYNAPSE_RELEASE
            command = f"python -m synapse_compat.config_keys {source.name}"
        try:
            markdown, origin = read_documentation(source)
            data = build(markdown, release=release, source=origin, command=command)
        except (DocumentError, OSError, tarfile.TarError, yaml.YAMLError) as error:
            print(f"config_keys: {error}", file=sys.stderr)
            return 1
    args.output.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", "utf-8")
    print(f"wrote {args.output}: {len(data['keys'])} keys of Synapse {release} (from {origin})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
