"""A homeserver with open registration for working on the web client by hand.

    .venv/bin/python web-client/scripts/dev_server.py --port 8100 [--users alice,bob]

Starts the real server on 127.0.0.1:PORT (SQLite under /tmp/hs-dev-PORT, relaxed rate
limits), registers the users (password "correct horse battery") and waits; Ctrl-C
stops it.  Then `npx vite --port PORT+1` in web-client/ with HS_URL=http://127.0.0.1:PORT
serves the app with /_matrix proxied to it.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.matrix import PASSWORD, register, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", default="alice,bob")
    args = parser.parse_args()
    data = Path(f"/tmp/hs-dev-{args.port}")
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    database = {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}}
    import tests.support.matrix as matrix_support

    matrix_support.free_port = lambda: args.port
    with running_server(data, database) as server:
        for user in filter(None, args.users.split(",")):
            register(server, user)
        print(f"homeserver on {server.base_url}; users {args.users} / {PASSWORD!r}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
