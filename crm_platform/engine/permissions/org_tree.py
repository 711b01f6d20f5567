"""The org tree's rows following the Registry: crm_org_unit rows are keyed by the org chart's unit
keys (crm_seed_record, entity `crm_org_unit`), and on every sync the units of the site layer (pack
`site`), with the units above them, are created or updated to their declaration (name, kind,
parent; the materialized path of the unit and everything below it follows a move). Units the
chart no longer has, or marks archived, keep their row (records keep their unit) but are offered
for nothing new. A row without a key (made before the tree was versioned) is adopted by the key
`unit_<id>` the first time the layer names it so."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.metadata.access import OrgChart, OrgUnitSeed
from crm_platform.metadata.model import Registry

UNIT_KEYS = "crm_org_unit"  # crm_seed_record.entity of the unit keys
LAYER_PACK = "site"  # engine/site_layer.PACK_NAME (not imported: site_layer imports the Site)
ADOPTED_KEY = re.compile(r"^unit_(\d+)$")


@dataclass(frozen=True)
class UnitRow:
    """A crm_org_unit row as the screens show it."""

    id: int
    name: str
    kind: str
    parent_id: int | None
    path: str
    key: str | None
    archived: bool  # archived in the chart, or a keyed unit the chart no longer has
    label_en: str
    label_zh: str

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "name": self.name, "label": {"en": self.label_en, "zh-CN": self.label_zh}, "kind": self.kind,
                "parent_id": self.parent_id, "path": self.path, "archived": self.archived}


def row_name(unit: OrgUnitSeed) -> str:
    """The name a unit's row carries (both languages, as the demo loader writes them)."""
    en, zh = unit.name.en, unit.name.zh_cn
    return en if not zh or zh == en else f"{zh} {en}"


def chart_of(registry: Registry) -> OrgChart:
    chart = registry.extra.get("org")
    return chart if isinstance(chart, OrgChart) else OrgChart()


def unit_keys(conn: sa.Connection, system: dict[str, sa.Table]) -> dict[str, int]:
    keys = system["crm_seed_record"]
    return {row.key: int(row.record_id) for row in conn.execute(sa.select(keys.c.key, keys.c.record_id).where(keys.c.entity == UNIT_KEYS))}


def inactive_unit_ids(keys: dict[str, int], chart: OrgChart) -> set[int]:
    """Rows whose key the chart does not have, or has archived."""
    active = {u.key for u in chart.units if not u.archived}
    return {unit_id for key, unit_id in keys.items() if key not in active}


def list_units(engine: sa.Engine, system: dict[str, sa.Table], registry: Registry) -> list[UnitRow]:
    """Every unit row in tree order, with its key and whether it is archived."""
    units = system["crm_org_unit"]
    chart = chart_of(registry)
    declared = {u.key: u for u in chart.units}
    with engine.connect() as conn:
        keys = unit_keys(conn, system)
        rows = conn.execute(sa.select(units).order_by(units.c.path)).mappings().all()
    by_id = {unit_id: key for key, unit_id in keys.items()}
    inactive = inactive_unit_ids(keys, chart)
    result = []
    for row in rows:
        key = by_id.get(row["id"])
        seed = declared.get(key) if key else None
        label_en = seed.name.en if seed else row["name"]
        label_zh = seed.name.zh_cn if seed else row["name"]
        result.append(UnitRow(row["id"], row["name"], row["kind"], row["parent_id"], row["path"], key, row["id"] in inactive, label_en, label_zh))
    return result


def sync_org_units(conn: sa.Connection, system: dict[str, sa.Table], registry: Registry) -> None:
    """Make the unit rows what the chart declares (see the module docstring)."""
    chart = chart_of(registry)
    if not chart.units:
        return
    units, keys_table = system["crm_org_unit"], system["crm_seed_record"]
    keys = unit_keys(conn, system)
    declared = {u.key: u for u in chart.units}
    needed: set[str] = set()
    for unit in chart.units:
        if unit.pack == LAYER_PACK or unit.key in keys or _adoptable(conn, units, keys, unit.key):
            key: str | None = unit.key
            while key is not None and key not in needed:
                needed.add(key)
                key = declared[key].parent
    for unit in chart.units:  # parents first
        if unit.key not in needed:
            continue
        parent_id = keys[unit.parent] if unit.parent else None
        unit_id = keys.get(unit.key)
        if unit_id is None and _adoptable(conn, units, keys, unit.key):
            unit_id = int(ADOPTED_KEY.match(unit.key).group(1))  # type: ignore[union-attr]
            conn.execute(keys_table.insert().values(entity=UNIT_KEYS, key=unit.key, pack=unit.pack, kind="org", record_id=unit_id))
        if unit_id is None:
            unit_id = int(conn.execute(units.insert().values(name=row_name(unit), kind=unit.kind, parent_id=parent_id, path="/", created_at=utcnow())
                                       .returning(units.c.id)).scalar_one())
            conn.execute(keys_table.insert().values(entity=UNIT_KEYS, key=unit.key, pack=unit.pack, kind="org", record_id=unit_id))
            old_path = None
        else:
            old_path = conn.execute(sa.select(units.c.path).where(units.c.id == unit_id)).scalar()
        keys[unit.key] = unit_id
        parent_path = conn.execute(sa.select(units.c.path).where(units.c.id == parent_id)).scalar() if parent_id is not None else "/"
        path = f"{parent_path}{unit_id}/"
        conn.execute(units.update().where(units.c.id == unit_id).values(name=row_name(unit), kind=unit.kind, parent_id=parent_id, path=path))
        if old_path is not None and old_path != path:
            conn.execute(units.update().where(units.c.path.like(old_path + "%"), units.c.id != unit_id)
                         .values(path=sa.func.replace(units.c.path, old_path, path)))


def _adoptable(conn: sa.Connection, units: sa.Table, keys: dict[str, int], key: str) -> bool:
    """`unit_<id>` names a row that has no key yet."""
    match = ADOPTED_KEY.match(key)
    if match is None or key in keys:
        return False
    unit_id = int(match.group(1))
    if unit_id in keys.values():
        return False
    return conn.execute(sa.select(units.c.id).where(units.c.id == unit_id)).first() is not None
