"""Changing the ON DELETE rule of a foreign key in place on SQLite.

SQLite cannot alter a constraint, and rebuilding a table inside the migration transaction
would fire ON DELETE actions of the tables referencing it. Changing a foreign key's action
does not change how anything is stored, so SQLite documents editing the table's definition
in sqlite_schema for it (https://www.sqlite.org/lang_altertable.html#otheralter). We edit
exactly one REFERENCES clause, bump the schema version, and check the result with
PRAGMA foreign_key_list; any surprise raises, and the transaction is rolled back.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

_ACTIONS = r"(?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|CASCADE|RESTRICT|NO\s+ACTION))*"


class ForeignKeyEditError(Exception):
    """The table definition did not have the expected shape; nothing was changed."""


def _ident(name: str) -> str:
    n = re.escape(name)
    return rf'(?:"{n}"|`{n}`|\[{n}\]|\b{n}\b)'


def set_on_delete(conn: sa.Connection, table: str, column: str, target: str, rule: str) -> None:
    """Make `table.column REFERENCES target(id)` use ON DELETE `rule` (e.g. 'SET NULL')."""
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    ref = rf"REFERENCES\s*{_ident(target)}\s*\(\s*{_ident('id')}\s*\)"
    patterns = (
        rf"(FOREIGN\s+KEY\s*\(\s*{_ident(column)}\s*\)\s*{ref}){_ACTIONS}",  # table constraint
        rf"((?:^|[,(])\s*{_ident(column)}\s+[^,()]*(?:\(\d+\))?[^,()]*?{ref}){_ACTIONS}",  # column constraint
    )
    new_sql, count = sql, 0
    for pattern in patterns:
        new_sql, n = re.subn(pattern, lambda m: f"{m.group(1)} ON DELETE {rule}", new_sql, flags=re.IGNORECASE)
        count += n
    if count != 1:
        raise ForeignKeyEditError(f"{table}.{column}: found {count} foreign key clause(s) to {target}, expected one")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new_sql, table))
        conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema=OFF")
    rules = [row[6] for row in conn.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")') if row[3] == column]
    if rules != [rule]:
        raise ForeignKeyEditError(f"{table}.{column}: ON DELETE is {rules} after the edit, expected {rule}")
