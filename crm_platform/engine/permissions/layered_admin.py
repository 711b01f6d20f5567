"""An administrator's changes to roles (add, label, includes), the permission matrix, field access
and the org tree (add, rename, move, archive) as versions of the site layer: each call reads the
role or unit as it is served, writes it whole into the layer's roles.yaml or org.yaml
(layer_access_edits) and applies the new files as a version (site_layer): in the version history
with its diff, undone by a rollback, exported with the pack, and served by every process (the
RegistryWatcher) with Casbin's policy reloaded (the sync bumps the policy version).

Computing a change and applying it are separate: each `*_change` method returns a LayerChange
(the layer's new files and the version's note) without writing anything, which the admin screens
preview before the admin applies it; `apply` makes the version. `create_role`, `update_role`,
`set_matrix`, `set_field_access`, `create_unit` and `update_unit` do both at once, for the API
and the CLI (a call is its own confirmation).

Refusals are ValidationFailed naming the input (or the layer file) and change nothing; a unit or
role that is not there is NotFound. Roles and units made before they were versioned (rows only)
are taken into the layer, whole, the first time they are changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_platform.engine.layer_access_edits import (
    RoleSpec,
    UnitSpec,
    check_field_access,
    check_grant,
    check_role_name,
    check_unit,
    layer_role,
    new_unit_key,
    put_role,
    put_units,
)
from crm_platform.engine.layer_edits import EditRefused
from crm_platform.engine.permissions.org_tree import UnitRow, chart_of, list_units, unit_keys
from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed
from crm_platform.engine.site_layer import LayerRefused, LayerVersion, SiteLayer
from crm_platform.metadata.access import Role

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

KEEP: Any = object()  # "leave as it is" for optional arguments where None means "none"


@dataclass(frozen=True)
class LayerChange:
    """One administrator's change, computed and not applied: the layer's files after it, the note
    its version gets, and for a new unit the key the unit gets."""

    files: dict[str, str]
    note: str
    unit_key: str | None = None


class LayeredAccessAdmin:
    def __init__(self, site: Site) -> None:
        self.site = site

    # -- applying ----------------------------------------------------------------------------
    def apply(self, change: LayerChange, by: str) -> LayerVersion:
        """Make the change a version of the site layer; ValidationFailed when the layer refuses it."""
        try:
            return SiteLayer(self.site).apply(change.files, change.note, by)
        except LayerRefused as exc:
            details = [FieldError(p.file or "layer", p.message, p.code or "refused") for p in exc.problems]
            if exc.plan is not None:
                details += [FieldError(s.table, f"{s.description}: {s.refusal or s.blocked}", "refused") for s in exc.plan.refused]
            raise ValidationFailed(details or [FieldError("layer", exc.message, "refused")]) from None

    def _files(self) -> dict[str, str]:
        return SiteLayer(self.site).current_files()

    # -- roles -------------------------------------------------------------------------------
    def _declared(self) -> dict[str, Role]:
        return {r.name: r for r in self.site.registry.extra.get("roles", ())}

    def role(self, name: str) -> RoleSpec:
        """The role as it is served: declared by a pack or the layer, or made before roles were versioned."""
        declared = self._declared().get(name)
        if declared is not None:
            grants: dict[tuple[str, str], str] = {}
            for perm in declared.permissions:
                for action in perm.actions:
                    grants[(perm.entity, action)] = perm.scope
            return RoleSpec(name, declared.label.en, declared.label.zh_cn, list(declared.includes), grants,
                            [(f.entity, f.field, f.access) for f in declared.fields])
        row = next((r for r in self.site.permissions.list_roles() if r["name"] == name), None)
        if row is None:
            raise NotFound(f"no role '{name}'")
        return RoleSpec(name, row["label_en"], row["label_zh"], list(row["includes"]),
                        {(g["entity"], g["action"]): g["scope"] for g in row["grants"]},
                        [(f["entity"], f["field"], f["access"]) for f in row["fields"]])

    def _put_role(self, role: RoleSpec, note: str, also: list[RoleSpec] | None = None) -> LayerChange:
        """The layer with the role (and `also`: rows-only roles it now includes) written into it."""
        files = self._files()
        declared = self._declared()
        for spec in [*(also or []), role]:
            existing = layer_role(files, spec.name)
            replaces = bool(existing.get("replaces")) if existing is not None else spec.name in declared
            files = put_role(files, spec, replaces)
        return LayerChange(files, note)

    def _included(self, name: str, includes: list[str]) -> tuple[list[str], list[RoleSpec]]:
        """The roles `name` includes, checked, and those of them made before roles were versioned
        (rows only: the layer must declare them too)."""
        known = set(self._declared()) | {r["name"] for r in self.site.permissions.list_roles()}
        unknown = [i for i in includes if i not in known]
        if unknown or name in includes:
            raise ValidationFailed([FieldError("includes", "a role cannot include itself" if name in includes else f"unknown role(s): {', '.join(unknown)}")])
        included = list(dict.fromkeys(includes))
        return included, [self.role(i) for i in included if i not in self._declared()]

    def create_role(self, name: str, label_en: str, label_zh: str | None, by: str, includes: list[str] | None = None) -> LayerVersion:
        return self.apply(self.create_role_change(name, label_en, label_zh, includes), by)

    def create_role_change(self, name: str, label_en: str, label_zh: str | None, includes: list[str] | None = None) -> LayerChange:
        try:
            check_role_name(name, {r["name"] for r in self.site.permissions.list_roles()} | set(self._declared()))
            if not label_en.strip():
                raise EditRefused({"label_en": "give the English label"})
        except EditRefused as exc:
            raise _invalid(exc) from None
        included, rows_only = self._included(name, includes or [])
        role = RoleSpec(name, label_en.strip(), (label_zh or "").strip() or label_en.strip(), included)
        return self._put_role(role, f"new role {name}", rows_only)

    def update_role(self, name: str, by: str, label_en: str | None = None, label_zh: str | None = None, includes: list[str] | None = None) -> LayerVersion:
        return self.apply(self.update_role_change(name, label_en, label_zh, includes), by)

    def update_role_change(self, name: str, label_en: str | None = None, label_zh: str | None = None, includes: list[str] | None = None) -> LayerChange:
        """Change a role's label and what it includes (the loader refuses unknown roles and cycles)."""
        role = self.role(name)
        if label_en is not None and label_en.strip():
            role.label_en = label_en.strip()
        if label_zh is not None:
            role.label_zh = label_zh.strip() or role.label_en
        if includes is not None:
            role.includes = self._included(name, includes)[0]
        rows_only = [self.role(i) for i in role.includes if i not in self._declared()]  # made before roles were versioned
        return self._put_role(role, f"role {name}: label and includes", rows_only)

    def set_matrix(self, name: str, cells: dict[tuple[str, str], str | None], by: str) -> LayerVersion | None:
        change = self.matrix_change(name, cells)
        return self.apply(change, by) if change is not None else None

    def matrix_change(self, name: str, cells: dict[tuple[str, str], str | None]) -> LayerChange | None:
        """Set cells of a role's matrix: (entity, action) -> scope, or None for no grant. Cells not
        named keep their grant. None when nothing changes (no version)."""
        entities = set(self.site.registry.entities)
        try:
            for (entity, action), scope in cells.items():
                check_grant(entity, action, scope, entities)
        except EditRefused as exc:
            raise _invalid(exc) from None
        role = self.role(name)
        before = dict(role.grants)
        for key, scope in cells.items():
            if scope is None:
                role.grants.pop(key, None)
            else:
                role.grants[key] = scope
        if role.grants == before:
            return None
        return self._put_role(role, f"role {name}: permissions")

    def set_field_access(self, name: str, entity: str, field: str, access: str | None, by: str) -> LayerVersion:
        return self.apply(self.field_access_change(name, entity, field, access), by)

    def field_access_change(self, name: str, entity: str, field: str, access: str | None) -> LayerChange:
        """A field of an entity hidden or read-only for the role (access None: visible again)."""
        try:
            check_field_access(access)
        except EditRefused as exc:
            raise _invalid(exc) from None
        if entity not in self.site.registry.entities or field not in self.site.registry.entity(entity).field_map:
            raise ValidationFailed([FieldError("field", f"unknown field '{entity}.{field}'")])
        role = self.role(name)
        role.fields = [f for f in role.fields if (f[0], f[1]) != (entity, field)] + ([(entity, field, access)] if access else [])
        return self._put_role(role, f"role {name}: field access {entity}.{field}")

    # -- the org tree --------------------------------------------------------------------------
    def units(self) -> list[UnitRow]:
        return list_units(self.site.engine, self.site.schema.system, self.site.registry)

    def _unit_specs(self, unit_id: int, rows: dict[int, UnitRow], into: dict[str, UnitSpec]) -> UnitSpec:
        """The unit as served, with the units above it that the layer must name too (adopted
        rows made before the tree was versioned: key unit_<id>)."""
        row = rows.get(unit_id)
        if row is None:
            raise NotFound(f"org unit {unit_id} not found")
        declared = {u.key: u for u in chart_of(self.site.registry).units}
        key = row.key or f"unit_{row.id}"
        seed = declared.get(key)
        if seed is not None:
            return UnitSpec(key, seed.name.en, seed.name.zh_cn, seed.kind, seed.parent, seed.archived)
        parent = self._unit_specs(row.parent_id, rows, into).key if row.parent_id is not None else None
        spec = UnitSpec(key, row.label_en, row.label_zh, row.kind, parent, row.archived)
        into.setdefault(key, spec)
        return spec

    def _unit_id(self, key: str) -> int:
        with self.site.engine.connect() as conn:
            return unit_keys(conn, self.site.schema.system)[key]

    def create_unit(self, name_en: str, kind: str, parent_id: int | None, by: str, name_zh: str | None = None) -> int:
        """Add a unit (under `parent_id`, or at the top) as a version; the new unit's id."""
        change = self.create_unit_change(name_en, kind, parent_id, name_zh)
        self.apply(change, by)
        assert change.unit_key is not None
        return self._unit_id(change.unit_key)

    def create_unit_change(self, name_en: str, kind: str, parent_id: int | None, name_zh: str | None = None) -> LayerChange:
        try:
            check_unit(name_en, kind)
        except EditRefused as exc:
            raise _invalid(exc) from None
        rows = {r.id: r for r in self.units()}
        extra: dict[str, UnitSpec] = {}
        parent = self._unit_specs(parent_id, rows, extra) if parent_id is not None else None
        if parent is not None and parent.archived:
            raise ValidationFailed([FieldError("parent_id", f"the unit '{parent.name_en}' is archived: restore it first or choose another parent")])
        with self.site.engine.connect() as conn:
            taken = set(unit_keys(conn, self.site.schema.system)) | {u.key for u in chart_of(self.site.registry).units}
        key = new_unit_key(name_en, taken)
        name_en = name_en.strip()
        unit = UnitSpec(key, name_en, (name_zh or "").strip() or name_en, kind, parent.key if parent else None)
        return LayerChange(put_units(self._files(), [*extra.values(), unit]), f"new unit {name_en}", key)

    def update_unit(self, unit_id: int, by: str, name_en: str | None = None, name_zh: str | None = None, kind: str | None = None,
                    parent_id: Any = KEEP, archived: bool | None = None) -> LayerVersion:
        return self.apply(self.update_unit_change(unit_id, name_en, name_zh, kind, parent_id, archived), by)

    def update_unit_change(self, unit_id: int, name_en: str | None = None, name_zh: str | None = None, kind: str | None = None,
                           parent_id: Any = KEEP, archived: bool | None = None) -> LayerChange:
        """Rename, change the kind, move (parent_id None: to the top) or archive/restore a unit."""
        rows = {r.id: r for r in self.units()}
        extra: dict[str, UnitSpec] = {}
        unit = self._unit_specs(unit_id, rows, extra)
        if name_en is not None and name_en.strip():
            unit.name_en = name_en.strip()
        if name_zh is not None:
            unit.name_zh = name_zh.strip() or unit.name_en
        if kind is not None:
            unit.kind = kind
        try:
            check_unit(unit.name_en, unit.kind)
        except EditRefused as exc:
            raise _invalid(exc) from None
        what = []
        if parent_id is not KEEP and parent_id != rows[unit_id].parent_id:
            if parent_id is not None:
                below = rows.get(parent_id)
                if below is None:
                    raise NotFound(f"org unit {parent_id} not found")
                if below.path.startswith(rows[unit_id].path):
                    raise ValidationFailed([FieldError("parent_id", "a unit cannot move below itself")])
                parent = self._unit_specs(parent_id, rows, extra)
                if parent.archived:
                    raise ValidationFailed([FieldError("parent_id", f"the unit '{parent.name_en}' is archived: choose another parent")])
                unit.parent = parent.key
            else:
                unit.parent = None
            what.append("moved")
        if archived is not None and archived != unit.archived:
            unit.archived = archived
            what.append("archived" if archived else "restored")
        extra.pop(unit.key, None)
        return LayerChange(put_units(self._files(), [*extra.values(), unit]), f"unit {unit.name_en}: {', '.join(what) or 'renamed'}")


def _invalid(exc: EditRefused) -> ValidationFailed:
    return ValidationFailed([FieldError(name, message) for name, message in exc.errors.items()])
