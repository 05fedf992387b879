"""What a profile is: its stored fields (shared by the profile handler, the HTTP API
and the profile store, so the API never imports the store).

spec: client-server-api/_index.md#profiles
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Profile:
    displayname: str | None = None
    avatar_url: str | None = None

    def member_content(self) -> dict[str, str]:
        """The fields a member event carries: those that are set."""
        content = {}
        if self.displayname is not None:
            content["displayname"] = self.displayname
        if self.avatar_url is not None:
            content["avatar_url"] = self.avatar_url
        return content


#: The profile fields this server stores; the store also uses them as its column
#: names (the only names it puts into SQL text).
PROFILE_FIELDS = ("displayname", "avatar_url")
