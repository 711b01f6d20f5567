"""From the layered profile to plans: which entity is the root, which are pools, what each
other entity is generated under and linked through, its counts, owners and field generators.
`load_profile` either returns a complete Profile or raises PackError with every problem."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_platform.engine.demo_data.compile_fields import FieldCompiler, FieldContext
from crm_platform.engine.demo_data.expressions import compile_at
from crm_platform.engine.demo_data.model import (
    DemoDataError,
    EntityPlan,
    Located,
    OwnerGroup,
    Profile,
    parse_count,
)
from crm_platform.engine.demo_data.reader import (
    PROFILE_FILE,
    RawEntity,
    RawProfile,
    profile_paths,
    read_profiles,
)
from crm_platform.engine.demo_data.row_rules import Converters
from crm_platform.metadata.errors import PackError, Problem, did_you_mean
from crm_platform.metadata.model import Entity, Registry

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MODES = ("per_size", "at_least", "per")


def load_profile(site: Site) -> Profile:
    """The site's demo profile (every pack's demo_profile.yaml, layered). Raises PackError for
    problems in the files, DemoDataError when no pack ships one."""
    paths = profile_paths(site.registry)
    if not paths:
        names = ", ".join(p.name for p in site.registry.packs)
        raise DemoDataError(f"none of the packs of this site ({names}) ships a {PROFILE_FILE}; generated demo data needs one")
    raw = read_profiles(paths)
    return PlanCompiler(site.registry, raw, Converters()).compile()


class PlanCompiler:
    def __init__(self, registry: Registry, raw: RawProfile, store: Any) -> None:
        self.registry = registry
        self.raw = raw
        self.problems: list[Problem] = []
        self.words = {name: tuple(str(w) for w in words) for name, (words, _) in raw.words.items()}
        self.fields = FieldCompiler(registry, self.words, store, self.problems)
        self.groups = self._groups()
        self.workflows = {w.entity: w for w in registry.extra.get("workflows", ())}

    def compile(self) -> Profile:
        plans: dict[str, EntityPlan] = {}
        ancestors: dict[str, tuple[str, ...]] = {}
        tree: list[str] = []  # entities generated per root row, in order
        order: list[EntityPlan] = []
        for raw in self.raw.entities.values():
            entity = self.registry.entities.get(raw.name)
            if entity is None:
                self.problems.append(raw.place.problem(f"unknown entity '{raw.name}'{did_you_mean(raw.name, self.registry.entities)}", at_key=True))
                continue
            plan = self._plan(raw, entity, plans)
            if plan is None:
                continue
            chain = () if plan.per is None else (plan.per, *ancestors.get(plan.per, ()))
            ancestors[entity.name] = chain
            earlier = frozenset(tree) | ({entity.name} if plan.mode != "pool" else set())  # itself: rows made before this one
            self._fields(plan, raw, chain, earlier)
            plans[entity.name] = plan
            if plan.mode != "pool":
                tree.append(entity.name)
            if plan.mode == "per" and plan.link == "parent_id":
                plans[plan.per or ""].children.append(plan)
            else:
                order.append(plan)
        roots = [p for p in plans.values() if p.mode == "root"]
        if len(roots) != 1 and not self.problems:
            where = Located(next(iter(self.raw.entities.values())).place.source, ("entities",)) if self.raw.entities else None
            found = ", ".join(p.name for p in roots) or "none"
            message = f"exactly one entity needs `per_size` (the root: --size N makes N times that many); found {found}"
            self.problems.append(where.problem(message) if where else Problem(self.raw.files[0], None, None, message))
        if self.problems:
            raise PackError(self.problems)
        ordered = [p for p in order if p.mode == "pool"] + [p for p in order if p.mode != "pool"]
        return Profile(ordered, roots[0], tuple(self.raw.files), self.words)

    # -- owners ----------------------------------------------------------------------------------
    def _groups(self) -> dict[str, OwnerGroup]:
        groups = {}
        for name, (data, where) in self.raw.owners.items():
            group = self._group(name, data, where)
            if group is not None:
                groups[name] = group
        return groups

    def _group(self, name: str, data: dict[str, Any], where: Located) -> OwnerGroup | None:
        roles = {r.name for r in self.registry.extra.get("roles", ())}
        if not data.get("roles") and not data.get("users"):
            self.problems.append(where.problem(f"owner group '{name}' names neither roles nor users"))
            return None
        for index, role in enumerate(data.get("roles", ())):
            if role not in roles:
                self.problems.append(where.child("roles", index).problem(f"unknown role '{role}'{did_you_mean(role, roles)}"))
        return OwnerGroup(name, tuple(data.get("roles", ())), tuple(data.get("users", ())), where)

    def _owner(self, raw: RawEntity, entity: Entity, mode: str) -> OwnerGroup | None:
        value, where = raw.settings.get("owner", (None, raw.place))
        if not entity.owned:
            if value is not None:
                self.problems.append(where.problem(f"{entity.name} records have no owner; remove `owner`", at_key=True))
            return None
        if value is None or value == "parent":
            if mode == "per":
                return None
            if value == "parent":
                self.problems.append(where.problem(f"{entity.name} is not generated under another row: name an owner group"))
            return self.groups.get("default") or OwnerGroup("every user with a role", roles=tuple(r.name for r in self.registry.extra.get("roles", ())))
        if isinstance(value, dict):
            return self._group(f"{entity.name} owners", value, where)
        if value not in self.groups:
            self.problems.append(where.problem(f"unknown owner group '{value}'{did_you_mean(value, self.groups)}; declare it under `owners:` or write parent"))
            return None
        return self.groups[value]

    # -- one entity --------------------------------------------------------------------------------
    def _plan(self, raw: RawEntity, entity: Entity, plans: dict[str, EntityPlan]) -> EntityPlan | None:
        settings = raw.settings
        modes = [m for m in MODES if m in settings]
        if len(modes) != 1:
            self.problems.append(raw.place.problem(f"entity '{entity.name}': give exactly one of per_size (the root), at_least (a pool) or per (rows for each row of another entity)", at_key=True))
            return None
        mode = {"per_size": "root", "at_least": "pool", "per": "per"}[modes[0]]
        plan = EntityPlan(entity, mode, raw.place)
        if mode != "per":
            for key in ("link", "count", "when"):
                if key in settings:
                    self.problems.append(settings[key][1].problem(f"entity '{entity.name}': `{key}` goes with `per`", at_key=True))
            plan.per_size = int(settings.get("per_size", (1, None))[0])
            plan.at_least = int(settings.get("at_least", (0, None))[0])
        else:
            if not self._per(plan, raw, entity, plans):
                return None
        if entity.child_of and plan.link != "parent_id":
            self.problems.append(raw.place.problem(f"{entity.name} rows are child rows of {entity.child_of}: generate them with `per: {entity.child_of}`", at_key=True))
            return None
        plan.owner = self._owner(raw, entity, mode)
        return plan

    def _per(self, plan: EntityPlan, raw: RawEntity, entity: Entity, plans: dict[str, EntityPlan]) -> bool:
        settings = raw.settings
        per, per_at = settings["per"]
        if per not in plans:
            listed = [name for name in self.raw.entities if name != entity.name]
            hint = f"; list {per} above {entity.name}" if per in self.raw.entities else did_you_mean(per, listed)
            self.problems.append(per_at.problem(f"entity '{entity.name}': per {per}: no such entity is generated before it{hint}"))
            return False
        if plans[per].mode == "pool":
            self.problems.append(per_at.problem(f"entity '{entity.name}': per {per}: {per} is a pool (at_least); rows are generated per root row or per row under it"))
            return False
        plan.per = per
        link, link_at = settings.get("link", (None, per_at))
        if entity.child_of == per:
            if link not in (None, "parent_id"):
                self.problems.append(link_at.problem(f"{entity.name} is a child table of {per}: its rows are linked by their parent; remove `link`"))
                return False
            plan.link = "parent_id"
        elif link == "none":
            plan.link = None
        elif link is not None:
            f = entity.field_map.get(link)
            if f is None or f.type != "reference" or f.entity != per:
                refs = [x.name for x in entity.fields if x.type == "reference" and x.entity == per]
                self.problems.append(link_at.problem(f"entity '{entity.name}': link '{link}' is not a reference to {per}; expected one of {', '.join(refs) or '(none)'} or none"))
                return False
            plan.link = link
        else:
            refs = [x.name for x in entity.fields if x.type == "reference" and x.entity == per]
            if len(refs) != 1:
                what = "no reference field" if not refs else f"several reference fields ({', '.join(refs)})"
                self.problems.append(per_at.problem(f"entity '{entity.name}' has {what} to {per}: say which with `link:` (or link: none)"))
                return False
            plan.link = refs[0]
        count_raw, count_at = settings.get("count", (1, per_at))
        try:
            plan.count = parse_count(count_raw)
        except ValueError as exc:
            self.problems.append(count_at.problem(f"entity '{entity.name}': {exc}"))
        if "when" in settings:
            text, when_at = settings["when"]
            plan.when, problems = compile_at(self.registry, when_at, text, per, "condition")
            self.problems.extend(problems)
        return True

    def _fields(self, plan: EntityPlan, raw: RawEntity, ancestors: tuple[str, ...], earlier: frozenset[str]) -> None:
        entity = plan.entity
        flow = self.workflows.get(entity.name)
        for name, (spec, where) in raw.fields.items():
            if plan.link is not None and name == plan.link:
                self.problems.append(where.problem(f"field '{name}' links each {entity.name} to its {plan.per}: the generator sets it", at_key=True))
                continue
            states = approval = None
            if flow is not None and flow.field == name:
                states = tuple(s.name for s in flow.states)
                approval = frozenset(s.name for s in flow.states if s.approval is not None)
            ctx = FieldContext(entity, earlier, ancestors, states, approval or frozenset())
            compiled = self.fields.compile(ctx, name, spec, where)
            if compiled is not None:
                plan.fields.append(compiled)
        plan.mentioned = frozenset(raw.fields)
