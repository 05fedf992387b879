"""Writing a complete, commented config file and a fresh signing key."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from string import Template


def render_config(
    server_name: str,
    *,
    data_dir: str,
    registration_shared_secret: str | None,
    public_baseurl: str | None = None,
) -> str:
    """The config template filled in; paths are relative to the config file."""
    template = Template(
        resources.files("homeserver.config").joinpath("template.yaml").read_text("utf-8")
    )
    if registration_shared_secret is None:
        secret_line = '#registration_shared_secret: ""'
    else:
        secret_line = f'registration_shared_secret: "{registration_shared_secret}"'
    return template.substitute(
        server_name=server_name,
        public_baseurl=public_baseurl or f"https://{server_name}/",
        database_path=f"{data_dir}/homeserver.db",
        signing_key_path=f"{data_dir}/{server_name}.signing.key",
        media_store_path=f"{data_dir}/media_store",
        registration_shared_secret_line=secret_line,
    )


def sample_config() -> str:
    """``config.sample.yaml``: the template for ``example.com``, with no secret in it."""
    return render_config("example.com", data_dir="data", registration_shared_secret=None)


def new_shared_secret() -> str:
    return secrets.token_urlsafe(32)


def write_config(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file contains the registration secret: owner-only.
    with path.open("x", encoding="utf-8") as stream:
        stream.write(text)
    path.chmod(0o600)
