"""Synapse ``homeserver.yaml`` keys we accept but do not (yet) act on.

An operator moving from Synapse keeps their file; keys Synapse documents produce a
warning at start-up instead of an error (the parser reads, and checks strictly, the
keys it understands: a key it reads is never warned about).  Anything neither
understood nor documented by Synapse is treated as a typo and stops the server.

The list is not kept by hand: ``synapse_config_keys.json`` is generated from the
configuration documentation of a pinned Synapse release by
``python -m synapse_compat.config_keys`` (see there).  It holds every top-level key
with the sub-keys Synapse documents for it, which the parser uses for the sections it
reads strictly (``listeners[]``, ``database``, ``password_config``, ``rc_*``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

_GENERATED = json.loads(
    resources.files("homeserver.config").joinpath("synapse_config_keys.json").read_text("utf-8")
)

#: The Synapse release the key list was generated from.
SYNAPSE_RELEASE: str = _GENERATED["synapse_release"]

#: Every key Synapse documents, each with its documented sub-keys (nested the same way;
#: the sub-keys of a list's entries are those of the list).
SYNAPSE_KEY_TREE: Mapping[str, Any] = _GENERATED["keys"]

#: Resource names a Synapse listener may serve.
SYNAPSE_LISTENER_RESOURCES = frozenset(_GENERATED["listener_resource_names"])

#: The documentation's example value of each key that has one.
SYNAPSE_EXAMPLES: Mapping[str, Any] = _GENERATED["examples"]

#: Keys Synapse still reads although its documentation no longer lists them
#: (deprecated spellings and the legacy module settings); found in the config code of
#: the same release.  A test checks none of them is documented, so this only shrinks.
UNDOCUMENTED_SYNAPSE_KEYS = frozenset(
    {
        "experimental_features",
        "federation_ip_range_blacklist",
        "password_providers",
        "rc_key_requests",
        "signing_key",
        "spam_checker",
        "third_party_event_rules",
        "use_presence",
    }
)

TOLERATED_TOP_LEVEL_KEYS = frozenset(SYNAPSE_KEY_TREE) | UNDOCUMENTED_SYNAPSE_KEYS

TOLERATED_DATABASE_KEYS = frozenset(SYNAPSE_KEY_TREE["database"])


def synapse_sub_keys(*path: str) -> Mapping[str, Any]:
    """The documented sub-key tree under ``path`` (e.g. ``"listeners", "resources"``)."""
    node: Mapping[str, Any] = SYNAPSE_KEY_TREE
    for key in path:
        node = node.get(key, {})
    return node
