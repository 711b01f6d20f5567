"""Which packs a site serves: CRM_PACKS, plus the packs installed on the site and minus the ones
removed from it (`crm-platform pack install / remove`), kept in crm_setting so every process
that opens the database serves the same packs. Installing plans and applies the schema change
in one transaction with the record of the choice; removing archives the pack's columns and
tables (their data is kept and comes back on a reinstall)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


KEY = "site_packs"


@dataclass
class PackChoices:
    installed: list[str] = field(default_factory=list)  # pack references (names or folders)
    removed: list[str] = field(default_factory=list)  # pack names

    def as_json(self) -> str:
        return json.dumps({"installed": self.installed, "removed": self.removed})


def _settings_table() -> sa.Table:
    return sa.Table("crm_setting", sa.MetaData(), sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))


def read_choices(engine: Engine) -> PackChoices:
    """The site's recorded choices (none on a new database)."""
    if "crm_setting" not in sa.inspect(engine).get_table_names():
        return PackChoices()
    table = _settings_table()
    with engine.connect() as conn:
        value = conn.execute(sa.select(table.c.value).where(table.c.key == KEY)).scalar()
    if not value:
        return PackChoices()
    data: dict[str, Any] = json.loads(value)
    return PackChoices(list(data.get("installed", [])), list(data.get("removed", [])))


def write_choices(conn: sa.Connection, choices: PackChoices) -> None:
    table = _settings_table()
    conn.execute(table.delete().where(table.c.key == KEY))
    conn.execute(table.insert().values(key=KEY, value=choices.as_json()))


def effective_packs(configured: tuple[str, ...], choices: PackChoices) -> tuple[str, ...]:
    """CRM_PACKS and the installed packs, without the removed ones, each pack once."""
    refs: list[str] = []
    names: set[str] = set()
    for ref in (*configured, *choices.installed):
        name = _name(ref)
        if name in choices.removed or name in names:
            continue
        refs.append(ref)
        names.add(name)
    return tuple(refs)


def _name(ref: str) -> str:
    return ref.rstrip("/").split("/")[-1]  # a pack's folder is named after it (the loader checks)


def with_pack(configured: tuple[str, ...], choices: PackChoices, ref: str) -> tuple[tuple[str, ...], PackChoices]:
    """The packs served after installing `ref` (a name in the search path, or a folder)."""
    if "/" in ref:
        ref = str(Path(ref).resolve())
    name = _name(ref)
    after = PackChoices([r for r in choices.installed if _name(r) != name] + [ref],
                        [n for n in choices.removed if n != name])
    return effective_packs(configured, after), after


def without_pack(configured: tuple[str, ...], choices: PackChoices, name: str) -> tuple[tuple[str, ...], PackChoices]:
    """The packs served after removing the pack `name`."""
    after = PackChoices([r for r in choices.installed if _name(r) != name],
                        sorted({*choices.removed, name}) if any(_name(r) == name for r in configured) else list(choices.removed))
    return effective_packs(configured, after), after
