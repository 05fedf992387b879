"""Writing a complete, commented config file and a fresh signing key."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from string import Template

import attrs


def render_config(
    server_name: str,
    *,
    data_dir: str,
    registration_shared_secret: str | None,
    public_baseurl: str | None = None,
    tls: TlsFiles | None = None,
) -> str:
    """The config template filled in; paths are relative to the config file.

    ``tls``: a federation listener on 8448 serving HTTPS with these files.
    """
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
        federation_listener=_federation_listener(tls),
        tls_paths=_tls_paths(tls, server_name),
    )


@attrs.frozen
class TlsFiles:
    """Where the certificate chain and private key are, relative to the config."""

    certificate_path: str
    private_key_path: str


def _federation_listener(tls: TlsFiles | None) -> str:
    lines = [
        "  # The federation listener: HTTPS on 8448, where other servers look first.",
        "  - port: 8448",
        "    type: http",
        "    tls: true",
        '    bind_addresses: ["::", "0.0.0.0"]',
        "    resources:",
        "      - names: [federation]",
    ]
    # Without certificate files the listener is shown commented out.
    prefix = "" if tls is not None else "#"
    return "".join(f"{prefix}{line}\n" for line in lines)


def _tls_paths(tls: TlsFiles | None, server_name: str) -> str:
    if tls is None:
        return (
            f'#tls_certificate_path: "{server_name}.tls.crt"\n'
            f'#tls_private_key_path: "{server_name}.tls.key"'
        )
    return (
        f'tls_certificate_path: "{tls.certificate_path}"\n'
        f'tls_private_key_path: "{tls.private_key_path}"'
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
