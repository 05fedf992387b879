"""The ``homeserver`` command.

    homeserver [--port 8008] [--bind 127.0.0.1]
                                        run the embedded default (./data, localhost:8008)
    homeserver -c homeserver.yaml       run with a config file
    homeserver generate-config --server-name example.com [--self-signed-tls]
    homeserver check-config -c homeserver.yaml
    homeserver register-user -u alice [-p PASSWORD] [--admin] [-c homeserver.yaml]
    homeserver build-web-client [-c homeserver.yaml] [--force]
                                        build web-client/ (npm ci, npm run build)

Every failure to start is reported as one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from homeserver import __version__
from homeserver.api.admin.register import PATH as ADMIN_REGISTER_PATH
from homeserver.app import StartupError, build_homeserver
from homeserver.auth.shared_secret import registration_mac
from homeserver.config.generate import TlsFiles, new_shared_secret, render_config, write_config
from homeserver.config.load import (
    EMBEDDED_BIND_ADDRESS,
    EMBEDDED_PORT,
    embedded_default_config,
    load_config_file,
)
from homeserver.config.model import HomeServerConfig
from homeserver.config.reader import ConfigError
from homeserver.crypto.keys import SigningKeyError, write_new_signing_key
from homeserver.crypto.self_signed import write_self_signed_certificate
from homeserver.errors import MatrixError
from homeserver.identifiers import is_valid_server_name
from homeserver.logging_setup import setup_logging
from homeserver.reactor import IServerReactor, installed_reactor
from homeserver.storage.migrations import DatabaseTooNewError
from homeserver.webclient.build import BuildFailed, build_before_start, build_web_client

logger = logging.getLogger("homeserver")

EXIT_USAGE = 2
EXIT_FAILURE = 1
DEFAULT_DATA_DIR = "data"
SUBCOMMANDS = ("run", "generate-config", "check-config", "register-user", "build-web-client")

#: Failures whose message says it all; anything else is a bug and gets a traceback too.
_EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    StartupError,
    SigningKeyError,
    DatabaseTooNewError,
)


class CommandError(Exception):
    """Reported as ``homeserver: <message>`` and exit status 1."""


def _fail(message: str, status: int) -> int:
    print(f"homeserver: {message}", file=sys.stderr)
    return status


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        help="YAML config file (default: the "
        "embedded default: server 'localhost' on 127.0.0.1:8008)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DEFAULT_DATA_DIR),
        help="where the embedded default keeps its database and key "
        f"(default: ./{DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"the embedded default's port (default: {EMBEDDED_PORT})",
    )
    parser.add_argument(
        "--bind",
        help=f"the embedded default's listening address (default: {EMBEDDED_BIND_ADDRESS})",
    )


def _load(args: argparse.Namespace) -> tuple[HomeServerConfig, bool]:
    """The config and whether the signing key may be created on first start."""
    if args.config is None:
        if args.port is not None and not 0 < args.port < 65536:
            raise CommandError(f"--port must be between 1 and 65535, got {args.port}")
        return (
            embedded_default_config(
                args.data_dir,
                port=args.port or EMBEDDED_PORT,
                bind_address=args.bind or EMBEDDED_BIND_ADDRESS,
            ),
            True,
        )
    if args.port is not None or args.bind is not None:
        raise CommandError(
            "--port and --bind set up the embedded default; with -c, set them in the "
            "config's listeners"
        )
    config, warnings = load_config_file(args.config)
    for warning in warnings:
        print(f"homeserver: warning: {warning}", file=sys.stderr)
    return config, False


def _describe(error: BaseException) -> str:
    if isinstance(error, ConfigError):
        # Every problem found, one line each (each printed after "homeserver: ").
        return "\nhomeserver: ".join(f"config error: {line}" for line in error.lines)
    if type(error).__module__.startswith("psycopg2"):
        return f"cannot use the database: {str(error).strip().splitlines()[0]}"
    return str(error)


def cmd_run(args: argparse.Namespace) -> int:
    config, create_key = _load(args)
    setup_logging(config)
    if not args.no_web_client_build:
        # Before the reactor runs: nothing is served while npm works.
        build_before_start(config.web_client)
    reactor = installed_reactor()

    outcome: dict[str, Any] = {"status": 0, "message": None}

    async def start() -> None:
        homeserver = await build_homeserver(config, reactor, create_signing_key=create_key)
        homeserver.start_listening()
        logger.info("homeserver %s (%s) is running", config.server_name, __version__)
        if not config.enable_registration:
            logger.info(
                "registration is closed (enable_registration: false); create accounts "
                "with: homeserver register-user -u NAME [--admin]%s",
                _same_server_arguments(args),
            )

    def failed(failure: Any) -> None:
        error = failure.value
        if not isinstance(error, _EXPECTED_ERRORS) and not type(error).__module__.startswith(
            "psycopg2"
        ):
            logger.error("start-up failed", exc_info=(failure.type, error, failure.tb))
        outcome["message"] = _describe(error)
        outcome["status"] = EXIT_FAILURE
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()).addErrback(failed))
    reactor.run()
    if outcome["message"] is not None:
        # After the reactor's own shutdown logging, so it is the last line printed.
        print(f"homeserver: {outcome['message']}", file=sys.stderr)
    return int(outcome["status"])


def _same_server_arguments(args: argparse.Namespace) -> str:
    """The options that make another ``homeserver`` command use this same server."""
    if args.config is not None:
        return f" -c {args.config}"
    if args.data_dir != Path(DEFAULT_DATA_DIR):
        return f" --data-dir {args.data_dir}"
    return ""


def cmd_check_config(args: argparse.Namespace) -> int:
    if (
        args.config is not None
        and getattr(args, "port", None) is None
        and getattr(args, "bind", None) is None
    ):
        # As _load, and the signing key file must exist too: the server stops without it.
        config, warnings = load_config_file(args.config, require_signing_key=True)
        for warning in warnings:
            print(f"homeserver: warning: {warning}", file=sys.stderr)
    else:
        config, _ = _load(args)
    print(f"{args.config or 'embedded default'}: OK (server_name {config.server_name})")
    return 0


def cmd_generate_config(args: argparse.Namespace) -> int:
    if not is_valid_server_name(args.server_name):
        return _fail(f"{args.server_name!r} is not a valid server name", EXIT_USAGE)
    output: Path = args.output
    if output.exists():
        return _fail(f"{output} already exists; not overwriting it", EXIT_FAILURE)
    tls = None
    if args.self_signed_tls:
        tls = TlsFiles(
            certificate_path=f"{args.server_name}.tls.crt",
            private_key_path=f"{args.server_name}.tls.key",
        )
        for name in (tls.certificate_path, tls.private_key_path):
            if (output.parent / name).exists():
                return _fail(
                    f"{output.parent / name} already exists; not overwriting it", EXIT_FAILURE
                )
    text = render_config(
        args.server_name,
        data_dir=args.data_dir,
        registration_shared_secret=new_shared_secret(),
        tls=tls,
    )
    write_config(output, text)
    if tls is not None:
        certificate = output.parent / tls.certificate_path
        write_self_signed_certificate(
            args.server_name, certificate, output.parent / tls.private_key_path
        )
        print(f"wrote a self-signed TLS certificate to {certificate} (valid for a year)")
    key_path = output.resolve().parent / args.data_dir / f"{args.server_name}.signing.key"
    if key_path.exists():
        print(f"kept the existing signing key {key_path}")
    else:
        write_new_signing_key(key_path)
        print(f"wrote a new signing key to {key_path}")
    print(f"wrote {output}; start the server with: homeserver -c {output}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise CommandError("passwords do not match")
        return password
    # Non-interactive: the first line of standard input, for scripts.
    return sys.stdin.readline().rstrip("\n")


def _register_over_http(args: argparse.Namespace, secret: str, password: str) -> str:
    """Synapse-compatible shared-secret registration against a running server."""
    base = args.url.rstrip("/")
    try:
        nonce = _http_json("GET", f"{base}{ADMIN_REGISTER_PATH}", None)["nonce"]
        mac = registration_mac(secret, nonce, args.user, password, args.admin)
        body = {
            "nonce": nonce,
            "username": args.user,
            "password": password,
            "admin": args.admin,
            "mac": mac,
        }
        return str(_http_json("POST", f"{base}{ADMIN_REGISTER_PATH}", body)["user_id"])
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise CommandError(f"the server refused: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise CommandError(f"cannot reach {args.url}: {error}") from None


def _http_json(method: str, url: str, body: Any) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def cmd_register_user(args: argparse.Namespace) -> int:
    config, _ = _load(args)
    secret: str = args.shared_secret or config.registration_shared_secret or ""
    if args.url is not None:
        if not secret:
            return _fail(
                "--url needs registration_shared_secret in the config, or --shared-secret",
                EXIT_USAGE,
            )
    password = _read_password(args)
    if not password:
        return _fail("the password must not be empty", EXIT_USAGE)
    if args.url is not None:
        user_id = _register_over_http(args, secret, password)
        print(f"registered {user_id}{' (admin)' if args.admin else ''}")
        return 0
    logging.basicConfig(level=logging.WARNING)

    outcome: dict[str, BaseException | None] = {"error": None}

    async def register(reactor: IServerReactor) -> None:
        try:
            homeserver = await build_homeserver(config, reactor, create_signing_key=True)
            try:
                user_id = await homeserver.handlers.registration.register_user(
                    args.user, password, admin=args.admin
                )
            finally:
                homeserver.database.close()
        except Exception as error:  # reported by main() once the reactor has stopped
            outcome["error"] = error
            return
        print(f"registered {user_id}{' (admin)' if args.admin else ''}")

    try:
        # react runs the global reactor, which installed_reactor() is (typed).
        task.react(lambda _: defer.ensureDeferred(register(installed_reactor())))
    except SystemExit:
        pass
    if outcome["error"] is not None:
        raise outcome["error"]
    return 0


def cmd_build_web_client(args: argparse.Namespace) -> int:
    config, _ = _load(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    web_client = config.web_client
    if web_client.directory is None or web_client.sources is None:
        raise CommandError(
            "no web client sources to build: web_client.directory must be the dist/ "
            "folder beside web-client/package.json"
        )
    try:
        built = build_web_client(web_client.sources, web_client.directory, force=args.force)
    except BuildFailed as failed:
        raise CommandError(f"the web client was not built: {failed}") from None
    print(f"{web_client.directory}: {'built' if built else 'up to date'}")
    return 0


def _build_parser(command: str) -> argparse.ArgumentParser:
    if command == "generate-config":
        parser = argparse.ArgumentParser(
            prog="homeserver generate-config",
            description="Write a complete, commented config and a new signing key.",
        )
        parser.add_argument("--server-name", required=True, help="e.g. example.com")
        parser.add_argument("-o", "--output", type=Path, default=Path("homeserver.yaml"))
        parser.add_argument(
            "--data-dir",
            default=DEFAULT_DATA_DIR,
            help="folder for the database, key and media, relative to the config",
        )
        parser.add_argument(
            "--self-signed-tls",
            action="store_true",
            help="also write a self-signed TLS certificate and key for the server name "
            "next to the config, and a federation listener on 8448 serving HTTPS with them",
        )
        parser.set_defaults(func=cmd_generate_config)
    elif command == "register-user":
        parser = argparse.ArgumentParser(
            prog="homeserver register-user", description="Create a user account."
        )
        _config_arguments(parser)
        parser.add_argument("-u", "--user", required=True, help="the localpart, e.g. alice")
        parser.add_argument(
            "-p", "--password", help="default: prompt, or the first line of standard input"
        )
        parser.add_argument(
            "--url",
            help="register through a running server's shared-secret "
            "admin API (as Synapse's register_new_matrix_user does), e.g. "
            "http://localhost:8008; default: write to the database directly",
        )
        parser.add_argument(
            "-k",
            "--shared-secret",
            help="with --url: default registration_shared_secret from the config",
        )
        admin = parser.add_mutually_exclusive_group()
        admin.add_argument("-a", "--admin", action="store_true", help="make a server admin")
        admin.add_argument("--no-admin", dest="admin", action="store_false")
        parser.set_defaults(func=cmd_register_user)
    elif command == "build-web-client":
        parser = argparse.ArgumentParser(
            prog="homeserver build-web-client",
            description="Build the web client (npm ci, npm run build) if it is missing "
            "or older than its sources; needs Node.js 20+.",
        )
        _config_arguments(parser)
        parser.add_argument("--force", action="store_true", help="build even if up to date")
        parser.set_defaults(func=cmd_build_web_client)
    else:
        parser = argparse.ArgumentParser(
            prog="homeserver" if command == "run" else f"homeserver {command}",
            description="A federated Matrix homeserver. Subcommands: " + ", ".join(SUBCOMMANDS),
        )
        _config_arguments(parser)
        parser.add_argument("--version", action="version", version=__version__)
        parser.add_argument(
            "--no-web-client-build",
            action="store_true",
            help="serve the web client as built, even if web_client.build is auto",
        )
        parser.set_defaults(func=cmd_check_config if command == "check-config" else cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = "run"
    if arguments and arguments[0] in SUBCOMMANDS:
        command = arguments.pop(0)
    args = _build_parser(command).parse_args(arguments)
    try:
        return int(args.func(args))
    except _EXPECTED_ERRORS + (CommandError,) as error:
        return _fail(
            _describe(error), EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILURE
        )
    except MatrixError as error:
        return _fail(error.message, EXIT_FAILURE)
    except Exception as error:
        if type(error).__module__.startswith("psycopg2"):
            return _fail(_describe(error), EXIT_FAILURE)
        raise
    except KeyboardInterrupt:
        return 130
