"""Building list views, forms and menus from pack files (seed sets via seed_check), checked against the entities."""

from __future__ import annotations

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.assembly import build_label, place_of
from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.model import (
    Entity,
    Form,
    FormSection,
    ListView,
    Menu,
    MenuItem,
    SeedSet,
    SortKey,
)
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.seed_check import SeedChecker
from crm_platform.metadata.yaml_source import JsonPath, SourceFile

# System columns a list view may show and sort by.
LISTABLE_SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "created_by", "updated_by", "owner_id", "state")


class ScreenAssembler:
    def __init__(self, packs: list[PackFiles], entities: dict[str, Entity], closure: dict[str, set[str]], broken: set[str]) -> None:
        self.packs = packs
        self.entities = entities
        self.closure = closure
        self.broken = broken
        self.problems: list[Problem] = []
        self.views: dict[str, ListView] = {}
        self.forms: dict[str, Form] = {}
        self.form_sources: dict[str, str] = {}
        self.menus: list[Menu] = []
        self.seed_checker = SeedChecker(entities, closure)

    @property
    def seeds(self) -> list[SeedSet]:
        return self.seed_checker.seeds

    def run(self) -> None:
        for pack in self.packs:
            for source in pack.of("views"):
                self._views(pack.pack.name, source)
            for source in pack.of("forms"):
                self._forms(pack.pack.name, source)
        for pack in self.packs:
            for source in pack.of("menus"):
                self._menus(pack.pack.name, source)
        for pack in self.packs:
            for kind in ("seed", "demo"):
                for source in pack.of(kind):
                    entity = self._entity(pack.pack.name, source, ("entity",), source.data["entity"])
                    if entity is not None and entity.child_of is not None:
                        parent = self.entities.get(entity.child_of)
                        holder = next((f.name for f in parent.fields if f.type == "child_table" and f.entity == entity.name), None) if parent else None
                        where = f"in the '{holder}' field of {entity.child_of} records" if holder else f"with their {entity.child_of} records"
                        self._problem(source, ("entity",), f"{entity.name} is a child table of {entity.child_of}: give its rows {where}", "seed.child_entity")
                    elif entity is not None:
                        self.seed_checker.add_file(pack.pack.name, kind, source, entity)
        self.seed_checker.check_references()
        self.problems.extend(self.seed_checker.problems)

    def _problem(self, source: SourceFile, path: JsonPath, message: str, code: str) -> None:
        self.problems.append(source.problem(path, message, code))

    def _entity(self, pack: str, source: SourceFile, path: JsonPath, name: str) -> Entity | None:
        """The entity `name` if `pack` can see it (its own or a dependency's); else report it."""
        entity = self.entities.get(name)
        if entity is None:
            if name not in self.broken:
                self._problem(source, path, f"unknown entity '{name}'{did_you_mean(name, {*self.entities, *self.broken})}", "entity.unknown")
            return None
        if entity.pack not in self.closure.get(pack, {pack}):
            message = f"entity '{name}' belongs to pack '{entity.pack}', which pack '{pack}' does not depend on; add '{entity.pack}' to depends in pack.yaml"
            self._problem(source, path, message, "entity.not_visible")
            return None
        return entity

    def _field_ok(self, entity: Entity, name: str, source: SourceFile, path: JsonPath, what: str, system_ok: bool) -> bool:
        if system_ok and name in LISTABLE_SYSTEM_COLUMNS:
            return True
        f = entity.field_map.get(name)
        if f is None:
            options = [*entity.field_map, *(LISTABLE_SYSTEM_COLUMNS if system_ok else ())]
            self._problem(source, path, f"{what}: unknown field '{name}' on {entity.name}{did_you_mean(name, options)}", "field.unknown")
            return False
        return True

    def _views(self, pack: str, source: SourceFile) -> None:
        entity = self._entity(pack, source, ("entity",), source.data["entity"])
        if entity is None:
            return
        for i, item in enumerate(source.data["views"]):
            what = f"view '{item['name']}'"
            key = f"{entity.name}.{item['name']}"
            if key in self.views:
                self._problem(source, ("views", i, "name"), f"{what} of {entity.name} is already declared at {self.views[key].place}", "view.duplicate")
                continue
            for j, col in enumerate(item["columns"]):
                ok = self._field_ok(entity, col, source, ("views", i, "columns", j), what, True)
                if ok and col in entity.field_map and not ft.FIELD_TYPES[entity.field(col).type].stored:
                    self._problem(source, ("views", i, "columns", j), f"{what}: field '{col}' of type {entity.field(col).type} cannot be a column", "view.bad_column")
            sort = []
            for j, spec in enumerate(item.get("sort", [])):
                name = spec.lstrip("-")
                if self._field_ok(entity, name, source, ("views", i, "sort", j), what, True):
                    sort.append(SortKey(name, spec.startswith("-")))
            self.views[key] = ListView(
                name=item["name"], entity=entity.name, label=build_label(item["label"], item["name"]),
                columns=tuple(item["columns"]), place=place_of(source, ("views", i)), sort=tuple(sort),
                page_size=item.get("page_size", 50), default=bool(item.get("default", False)), pack=pack,
                filter=item.get("filter"), filter_place=place_of(source, ("views", i, "filter")) if "filter" in item else None,
            )

    def _forms(self, pack: str, source: SourceFile) -> None:
        entity = self._entity(pack, source, ("entity",), source.data["entity"])
        if entity is None:
            return
        for i, item in enumerate(source.data["forms"]):
            base: Form | None = None
            if "extends" in item:
                key = f"{entity.name}.{item['extends']}"
                base = self.forms.get(key)
                if base is None or base.pack not in self.closure.get(pack, set()) or base.pack == pack:
                    known = [f.name for f in self.forms.values() if f.entity == entity.name]
                    self._problem(source, ("forms", i, "extends"), f"extends unknown form '{item['extends']}' of {entity.name} (from a depended-on pack){did_you_mean(item['extends'], known)}", "form.unknown")
                    continue
                name, label = base.name, base.label
            else:
                name, label = item["name"], build_label(item["label"], item["name"])
                key = f"{entity.name}.{name}"
                if key in self.forms:
                    self._problem(source, ("forms", i, "name"), f"form '{name}' of {entity.name} is already declared at {self.forms[key].place}", "form.duplicate")
                    continue
            placed = {fld for s in (base.sections if base else ()) for fld in s.fields}
            sections = list(base.sections) if base else []
            for j, sec in enumerate(item.get("sections", [])):
                for k, fname in enumerate(sec["fields"]):
                    path: JsonPath = ("forms", i, "sections", j, "fields", k)
                    if not self._field_ok(entity, fname, source, path, f"form '{name}'", False):
                        continue
                    if fname in placed:
                        self._problem(source, path, f"form '{name}': field '{fname}' is placed twice", "form.duplicate_field")
                    placed.add(fname)
                sections.append(FormSection(build_label(sec["label"], ""), tuple(sec["fields"]), sec.get("columns", 2), bool(sec.get("collapsed", False))))
            related = list(base.related) if base else []
            for j, rel in enumerate(item.get("related", [])):
                child_name, ref_name = rel.split(".")
                child = self._entity(pack, source, ("forms", i, "related", j), child_name)
                if child is None:
                    continue
                ref = child.field_map.get(ref_name)
                if ref is None or ref.type != "reference" or ref.entity != entity.name:
                    refs = [f.name for f in child.fields if f.type == "reference" and f.entity == entity.name]
                    hint = f"; use one of {', '.join(child_name + '.' + r for r in refs)}" if refs else ""
                    self._problem(source, ("forms", i, "related", j), f"form '{name}': '{rel}' is not a reference from {child_name} to {entity.name}{hint}", "form.bad_related")
                    continue
                related.append(rel)
            self.forms[key] = Form(name, entity.name, label, tuple(sections), base.place if base else place_of(source, ("forms", i)), tuple(related), base.pack if base else pack)

    def _menus(self, pack: str, source: SourceFile) -> None:
        for i, item in enumerate(source.data["menus"]):
            earlier = next((m for m in self.menus if m.name == item["name"]), None)
            if earlier is not None:
                self._problem(source, ("menus", i, "name"), f"menu '{item['name']}' is already declared at {earlier.place}; give this menu another name", "menu.duplicate")
                continue
            entries = []
            for j, entry in enumerate(item["items"]):
                path: JsonPath = ("menus", i, "items", j)
                entity = self._entity(pack, source, (*path, "entity"), entry["entity"])
                if entity is None:
                    continue
                view = entry.get("view")
                if view is not None and f"{entity.name}.{view}" not in self.views:
                    known = [v.name for v in self.views.values() if v.entity == entity.name]
                    self._problem(source, (*path, "view"), f"menu item: unknown view '{view}' of {entity.name}{did_you_mean(view, known)}", "menu.unknown_view")
                    continue
                label = build_label(entry["label"], "") if "label" in entry else entity.plural_label
                entries.append(MenuItem(entity.name, label, view, entry.get("icon") or entity.icon))
            self.menus.append(Menu(item["name"], build_label(item.get("label"), item["name"]), tuple(entries), place_of(source, ("menus", i)), item.get("order", 100), item.get("icon"), pack))
