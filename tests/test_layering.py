"""The layering rules of docs/architecture.md, checked on the source with ``ast``.

servlet (``homeserver/api``) -> handler -> store (``homeserver/storage``): servlets
reach stores only through handlers, stores know nothing of HTTP, the event library
stands alone, and ``rooms`` does not import ``directory`` (the directory builds on
rooms; rooms name what they need of it as protocols).  Imports inside functions and
``if TYPE_CHECKING:`` blocks count too: a dependency is a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import homeserver

PACKAGE_ROOT = Path(homeserver.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """Every module ``source`` (the text of ``module``) imports, relative ones made
    absolute.  ``from a import b`` yields ``a.b`` as well as ``a``: ``b`` may be a module.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``path imports module`` for each import under ``package`` of a module
    in (or under) one of ``forbidden``."""
    found = []
    for path in sorted((PACKAGE_ROOT.parent / package.replace(".", "/")).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        module = _module_name(path)
        for imported in _imported_modules(source, module, is_package=path.name == "__init__.py"):
            if any(imported == name or imported.startswith(name + ".") for name in forbidden):
                found.append(f"{path.relative_to(PACKAGE_ROOT.parent)} imports {imported}")
    return sorted(set(found))


def test_servlets_do_not_import_stores() -> None:
    # Servlets call handlers; types they share with stores live with the handlers.
    assert _violations("homeserver.api", ("homeserver.storage",)) == []


def test_stores_know_nothing_of_http() -> None:
    assert _violations("homeserver.storage", ("homeserver.api", "homeserver.http")) == []


def test_the_event_library_stands_alone() -> None:
    forbidden = ("homeserver.storage", "homeserver.api", "homeserver.http", "homeserver.rooms")
    assert _violations("homeserver.events", forbidden) == []


def test_rooms_do_not_import_the_directory() -> None:
    # The directory reads room state; importing it back from rooms makes a cycle.
    assert _violations("homeserver.rooms", ("homeserver.directory",)) == []


def test_the_checker_sees_relative_and_nested_imports() -> None:
    """The rules above are only as good as the import finder."""
    source = (
        "from ...storage import users\n"
        "from . import rooms\n"
        "from homeserver import storage\n"
        "def f() -> None:\n"
        "    import homeserver.storage.devices\n"
    )
    found = set(_imported_modules(source, "homeserver.api.client.probe"))
    assert {
        "homeserver.storage.users",
        "homeserver.api.client.rooms",
        "homeserver.storage",
        "homeserver.storage.devices",
    } <= found
    assert set(_imported_modules("from .. import http", "homeserver.api", is_package=True)) == {
        "homeserver",
        "homeserver.http",
    }


def test_types_shared_with_stores_import_no_store() -> None:
    # Stores import these to re-export them; an import back would be a cycle.
    shared = (
        "profile/fields.py",
        "auth/device_record.py",
        "directory/listing.py",
        "presence/record.py",
        "media/records.py",
        "e2ee/backup_records.py",
    )
    for name in shared:
        path = PACKAGE_ROOT / name
        imported = _imported_modules(path.read_text(encoding="utf-8"), _module_name(path))
        assert [module for module in imported if module.startswith("homeserver.")] == [], name


def test_only_the_assembly_imports_federation() -> None:
    # Handlers name what they need of federation as protocols; app.py wires it in.
    found = [
        violation
        for violation in _violations("homeserver", ("federation",))
        if not violation.startswith("homeserver/app.py ")
    ]
    assert found == []
