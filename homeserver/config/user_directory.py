"""Synapse's ``user_directory`` section (same keys, same defaults).

spec: client-server-api/_index.md#post_matrixclientv3user_directorysearch
"""

from __future__ import annotations

import attrs

from homeserver.config.reader import Section


@attrs.frozen
class UserDirectoryConfig:
    #: false: every search answers no results (the index is still kept).
    enabled: bool = True
    #: Every user the server knows, not only those sharing a room with the searcher
    #: or joined to a public room.
    search_all_users: bool = False
    #: Local users before remote ones of the same rank.
    prefer_local_users: bool = False
    #: Only local users are returned.
    exclude_remote_users: bool = False


def parse_user_directory(root: Section) -> UserDirectoryConfig:
    # show_locked_users: accounts cannot be locked here, so there is nothing to show.
    section = root.section("user_directory")
    defaults = UserDirectoryConfig()
    config = UserDirectoryConfig(
        enabled=section.get_bool("enabled", defaults.enabled),
        search_all_users=section.get_bool("search_all_users", defaults.search_all_users),
        prefer_local_users=section.get_bool("prefer_local_users", defaults.prefer_local_users),
        exclude_remote_users=section.get_bool(
            "exclude_remote_users", defaults.exclude_remote_users
        ),
    )
    section.finish()
    return config
