"""Fixtures shared by the federation tests (``tests/federation/...``).

Only fixtures more than one federation test folder needs belong here; a folder's
own fixtures live in its own ``conftest.py``.
"""

from __future__ import annotations
