"""Types for the parts of pytest-twisted the tests use: it ships none, and untyped
decorators would leave every decorated test unchecked.

Each decorator marks the function for pytest-twisted (the fixtures also register it
with ``pytest.fixture``); the test or fixture keeps its own signature.  Only the
bare forms (``@pytest_twisted.ensureDeferred``) are declared: add a keyword form
here when a test first needs one.
"""

from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

def ensureDeferred(f: _F) -> _F: ...
def async_fixture(f: _F) -> _F: ...
def async_yield_fixture(f: _F) -> _F: ...
