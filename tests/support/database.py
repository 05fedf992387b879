"""Reading and writing a test server's database directly, on either engine.

For what a test cannot do through the API: look at what was stored, or plant rows
as an import from another server would.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg2


def run_sql(database_config: dict[str, Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run ``query`` (``?`` placeholders) in its own committed transaction; its rows."""
    args = {k: v for k, v in database_config["args"].items() if k not in ("cp_min", "cp_max")}
    if database_config["name"] == "sqlite3":
        conn: Any = sqlite3.connect(args["database"])
    else:
        conn = psycopg2.connect(**args)
        query = query.replace("?", "%s")
    try:
        cursor = conn.cursor()
        cursor.execute(query, params)
        rows = cursor.fetchall() if cursor.description is not None else []
        conn.commit()
        return [tuple(row) for row in rows]
    finally:
        conn.close()
