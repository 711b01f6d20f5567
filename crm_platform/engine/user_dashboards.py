"""Dashboards users build in the browser (table crm_dashboard): a name, who sees it (its owner only,
everyone, or the holders of some roles) and an ordered list of widgets, each a copy of a report
spec with a title and a chart. Only the owner or an administrator changes or deletes one; every
widget still runs as a report for whoever views it, within what they may read.

Every dashboard has a `version` (1 when created, one more on every change). Every change names the
version it was based on, as record updates do: a change based on an older version is a 409
Conflict naming the dashboard and changes nothing (the write itself is guarded by the version, so
two saves racing each other cannot both win).

    boards = UserDashboards(site)
    board_id = boards.create(actor, "My pipeline", widgets=[{"report_id": 3, "chart": "funnel"}])
    boards.update(actor, board_id, {"sharing": "roles", "roles": ["sales_manager"]}, version=1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    RecordError,
    ValidationFailed,
)
from crm_platform.engine.reports import MAX_ROWS, Reports, ReportSpec, SavedReports

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

CHARTS = ("bar", "funnel", "table", "number", "target")
SHARING = ("private", "everyone", "roles")
MAX_WIDGETS = 30
MAX_NAME = 200
UPDATABLE = ("name", "sharing", "roles", "widgets")
WIDGET_KEYS = ("title", "chart", "spec", "report_id")


@dataclass(frozen=True)
class Role:
    name: str
    label_en: str
    label_zh: str

    def label(self, language: str) -> str:
        return self.label_zh if language.lower().startswith("zh") else self.label_en


def charts_for(spec: dict[str, Any]) -> list[str]:
    """The charts a report spec can be shown as: bars and funnels over one grouping, a target chart
    when it also has a second measure (the goal), the total as a number, always a table."""
    groups = len(spec.get("group_by") or [])
    allowed = ["bar", "funnel"] if groups == 1 else []
    if groups == 1 and len(spec.get("measures") or []) >= 2:
        allowed.append("target")
    return [*allowed, "table", "number"]


def stale(board: dict[str, Any], yours: int, current: int) -> Conflict:
    """The 409 for a change based on version `yours` of a board now at `current` (code `conflict`,
    as a stale record update; `details[0]` carries both versions)."""
    return Conflict(f"dashboard '{board['name']}' was changed by someone else since you opened it (you saw version {yours}, it is now at "
                    f"version {current}): reload it to see the current state, then make your change again",
                    [FieldError("version", f"changed by someone else since version {yours}", "conflict", {"current": current, "yours": yours})])


def default_chart(spec: dict[str, Any]) -> str:
    groups = len(spec.get("group_by") or [])
    return "bar" if groups == 1 else "table" if groups else "number"


class UserDashboards:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_dashboard"]

    # -- reading --------------------------------------------------------------------------
    def visible(self, actor: Actor) -> list[dict[str, Any]]:
        """The dashboards `actor` sees: their own, shared with everyone or with one of their roles
        (administrators see every one, to manage them), by name."""
        users = self.site.schema.system["crm_user"]
        query = (sa.select(self.table, users.c.display_name.label("owner_name"))
                 .join(users, users.c.id == self.table.c.owner_id).order_by(self.table.c.name, self.table.c.id))
        administrator = self.site.access.is_administrator(actor)
        if not administrator:  # the role names sit in JSON: those boards are narrowed below
            query = query.where(sa.or_(self.table.c.owner_id == actor.user_id, self.table.c.sharing.in_(("everyone", "roles"))))
        with self.site.engine.connect() as conn:
            rows = [self._board(r) for r in conn.execute(query).mappings()]
        roles = self._roles_of(actor)
        shown = [b for b in rows if administrator or b["owner_id"] == actor.user_id or b["sharing"] == "everyone"
                 or (b["sharing"] == "roles" and roles & set(b["roles"]))]
        for board in shown:
            board["can_edit"] = administrator or board["owner_id"] == actor.user_id
        return shown

    def get(self, actor: Actor, board_id: int) -> dict[str, Any]:
        """One dashboard `actor` may see; NotFound otherwise (a private board of someone else is not revealed)."""
        found = next((b for b in self.visible(actor) if b["id"] == board_id), None)
        if found is None:
            raise NotFound(f"dashboard {board_id} not found")
        return found

    def editable(self, actor: Actor, board_id: int) -> dict[str, Any]:
        """A dashboard `actor` may change: NotFound when they cannot see it, Forbidden when they only see it."""
        board = self.get(actor, board_id)
        if not board["can_edit"]:
            raise Forbidden(f"only the owner of dashboard '{board['name']}' or an administrator may change it")
        return board

    def roles(self) -> list[Role]:
        """Every role of the site, for sharing a dashboard with some of them."""
        table = self.site.schema.system["crm_role"]
        with self.site.engine.connect() as conn:
            return [Role(r.name, r.label_en, r.label_zh) for r in conn.execute(sa.select(table).order_by(table.c.name))]

    # -- writing --------------------------------------------------------------------------
    def create(self, actor: Actor, name: str, sharing: str = "private", roles: list[str] | None = None,
               widgets: list[dict[str, Any]] | None = None) -> int:
        if actor.user_id is None:
            raise Forbidden("dashboards belong to a user: log in as one")
        values = self._checked(actor, {"name": name, "sharing": sharing, "roles": roles or [], "widgets": widgets or []})
        stamp = utcnow()
        with self.site.engine.begin() as conn:
            inserted = conn.execute(self.table.insert().values(owner_id=actor.user_id, version=1, created_at=stamp, updated_at=stamp, **values)
                                    .returning(self.table.c.id))
            return int(inserted.scalar_one())

    def update(self, actor: Actor, board_id: int, changes: dict[str, Any], *, version: Any) -> dict[str, Any]:
        """Change name, sharing, roles and/or the whole widget list (in its new order), based on
        `version`; every bad part is named at once and nothing changes then. A stale `version` is a
        409 Conflict, a missing one a 400."""
        board = self.editable(actor, board_id)
        base = self._based_on(board, version)
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise ValidationFailed([FieldError(k, f"unknown property; a dashboard has {', '.join(UPDATABLE)}", "unknown") for k in unknown])
        merged = {"name": board["name"], "sharing": board["sharing"], "roles": board["roles"], "widgets": board["widgets"], **changes}
        if "sharing" in changes and changes["sharing"] != "roles" and "roles" not in changes:
            merged["roles"] = []
        values = self._checked(actor, merged, known=board["widgets"])
        with self.site.engine.begin() as conn:
            written = conn.execute(self.table.update().where(self.table.c.id == board_id, self.table.c.version == base)
                                   .values(version=base + 1, updated_at=utcnow(), **values))
            if written.rowcount != 1:
                self._refuse_race(conn, board, base)
        return self.get(actor, board_id)

    def delete(self, actor: Actor, board_id: int, *, version: Any) -> None:
        """Delete the dashboard if it is still at `version`; `version=None` deletes whatever it
        holds now (the API's DELETE without a version, as a record's DELETE takes none)."""
        board = self.editable(actor, board_id)
        base = board["version"] if version is None else self._based_on(board, version)
        with self.site.engine.begin() as conn:
            if conn.execute(self.table.delete().where(self.table.c.id == board_id, self.table.c.version == base)).rowcount != 1:
                self._refuse_race(conn, board, base)

    def add_widget(self, actor: Actor, board_id: int, widget: dict[str, Any], *, version: Any) -> dict[str, Any]:
        board = self.editable(actor, board_id)
        self._based_on(board, version)
        return self.update(actor, board_id, {"widgets": [*board["widgets"], widget]}, version=version)

    def remove_widget(self, actor: Actor, board_id: int, index: int, *, version: Any) -> dict[str, Any]:
        widgets = self._widgets_with(actor, board_id, index, version)
        del widgets[index]
        return self.update(actor, board_id, {"widgets": widgets}, version=version)

    def move_widget(self, actor: Actor, board_id: int, index: int, offset: int, *, version: Any) -> dict[str, Any]:
        """Move a widget up (offset -1) or down (+1); at either end it stays."""
        widgets = self._widgets_with(actor, board_id, index, version)
        target = min(max(index + offset, 0), len(widgets) - 1)
        widgets.insert(target, widgets.pop(index))
        return self.update(actor, board_id, {"widgets": widgets}, version=version)

    def set_widget(self, actor: Actor, board_id: int, index: int, chart: str | None = None, title: str | None = None, *,
                   version: Any) -> dict[str, Any]:
        widgets = self._widgets_with(actor, board_id, index, version)
        widget = dict(widgets[index])
        if chart is not None:
            widget["chart"] = chart
        if title is not None:
            widget["title"] = title
        widgets[index] = widget
        return self.update(actor, board_id, {"widgets": widgets}, version=version)

    # -- versions -------------------------------------------------------------------------
    @staticmethod
    def _based_on(board: dict[str, Any], version: Any) -> int:
        """`version` when the change may go ahead on `board`: 400 when it is missing or newer than
        the board's, 409 when someone else changed the board since."""
        if isinstance(version, bool) or not isinstance(version, int):
            raise BadRequest("'version' is required: send the version of the dashboard your change is based on",
                             [FieldError("version", "required: the version your change is based on", "required")])
        if version < 1 or version > board["version"]:
            why = "versions start at 1" if version < 1 else f"it is newer than its current version {board['version']}"
            raise BadRequest(f"version {version} is not a version of dashboard '{board['name']}': {why}",
                             [FieldError("version", "unknown version", "bad_version")])
        if version < board["version"]:
            raise stale(board, version, board["version"])
        return version

    def _refuse_race(self, conn: sa.Connection, board: dict[str, Any], base: int) -> None:
        """The guarded write found no row at `base`: someone changed or deleted the board meanwhile."""
        current = conn.execute(sa.select(self.table.c.version).where(self.table.c.id == board["id"])).scalar()
        if current is None:
            raise NotFound(f"dashboard {board['id']} not found")
        raise stale(board, base, int(current))

    # -- checking -------------------------------------------------------------------------
    def _widgets_with(self, actor: Actor, board_id: int, index: int, version: Any) -> list[dict[str, Any]]:
        board = self.editable(actor, board_id)
        self._based_on(board, version)  # an index means nothing on a board someone else reordered
        widgets = list(board["widgets"])
        if not 0 <= index < len(widgets):
            raise NotFound(f"dashboard {board_id} has no widget {index + 1} (it has {len(widgets)})")
        return widgets

    def _checked(self, actor: Actor, data: dict[str, Any], known: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Column values from a dashboard's parts; ValidationFailed naming every bad part. Widgets
        already on the board (`known`, unchanged) are kept as they are; new or changed ones are
        checked and run once for `actor`."""
        errors: list[FieldError] = []
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            errors.append(FieldError("name", f"a dashboard needs a name of 1-{MAX_NAME} characters", "required"))
        sharing = data.get("sharing")
        if sharing not in SHARING:
            errors.append(FieldError("sharing", f"expected one of {', '.join(SHARING)}, not {sharing!r}", "choice"))
        roles = data.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            errors.append(FieldError("roles", "expected a list of role names", "type"))
            roles = []
        else:
            declared = {r.name for r in self.roles()}
            errors += [FieldError("roles", f"unknown role '{r}'", "unknown_role") for r in roles if r not in declared]
            if sharing == "roles" and not roles:
                errors.append(FieldError("roles", "name at least one role to share the dashboard with", "required"))
        widgets = data.get("widgets")
        checked: list[dict[str, Any]] = []
        if not isinstance(widgets, list) or not all(isinstance(w, dict) for w in widgets):
            errors.append(FieldError("widgets", "expected a list of widgets {title, chart, report_id or spec}", "type"))
        elif len(widgets) > MAX_WIDGETS:
            errors.append(FieldError("widgets", f"a dashboard holds at most {MAX_WIDGETS} widgets", "too_many"))
        else:
            for i, widget in enumerate(widgets):
                if widget in (known or []):
                    checked.append(widget)
                    continue
                try:
                    checked.append(self._widget(actor, widget))
                except ValidationFailed as exc:
                    errors += [FieldError(f"widgets[{i}].{d.field}", d.message, d.code) for d in exc.details]
        if errors:
            raise ValidationFailed(errors)
        return {"name": str(name).strip(), "sharing": sharing, "roles": json.dumps(sorted(set(roles)) if sharing == "roles" else []),
                "widgets": json.dumps(checked, ensure_ascii=False)}

    def _widget(self, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        """A widget from {title?, chart?, report_id | spec}: a saved report's spec is copied, so the
        widget stays when the report is deleted. The spec is run once for `actor`, who must be able
        to read its records and fields."""
        errors = [FieldError(k, f"unknown property; a widget has {', '.join(WIDGET_KEYS)}", "unknown") for k in sorted(set(data) - set(WIDGET_KEYS))]
        report_id, raw, title = data.get("report_id"), data.get("spec"), data.get("title")
        if report_id is not None and raw is None:
            if not isinstance(report_id, int) or isinstance(report_id, bool):
                raise ValidationFailed([FieldError("report_id", "expected the id of a saved report", "type")])
            try:
                report = SavedReports(self.site).get(actor, report_id)
            except NotFound:
                raise ValidationFailed([FieldError("report_id", f"saved report {report_id} not found", "not_found")]) from None
            raw, title = report["spec"], title or report["name"]
        if not isinstance(raw, dict):
            raise ValidationFailed([*errors, FieldError("spec", "a widget needs report_id (a saved report) or spec (a report)", "required")])
        spec = self._spec(actor, raw)
        if title is None:
            title = self._default_title(spec)
        if not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_NAME:
            errors.append(FieldError("title", f"a widget needs a title of 1-{MAX_NAME} characters", "required"))
        chart = data.get("chart") or default_chart(spec)
        if chart not in CHARTS:
            errors.append(FieldError("chart", f"unknown chart {chart!r}; expected one of {', '.join(CHARTS)}", "choice"))
        elif chart not in charts_for(spec):
            why = "a target chart needs one grouping and two measures (value and goal)" if chart == "target" else f"a {chart} chart needs exactly one grouping"
            errors.append(FieldError("chart", f"{why}; this report can be shown as {', '.join(charts_for(spec))}", "chart"))
        if errors:
            raise ValidationFailed(errors)
        widget: dict[str, Any] = {"title": str(title).strip(), "chart": chart, "spec": spec}
        if isinstance(report_id, int) and not isinstance(report_id, bool):
            widget["report_id"] = report_id
        return widget

    def _spec(self, actor: Actor, raw: dict[str, Any]) -> dict[str, Any]:
        limit = raw.get("limit", MAX_ROWS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ValidationFailed([FieldError("spec.limit", f"the number of groups shown is a whole number of 1-{MAX_ROWS}, not {limit!r}", "range")])
        measures = raw.get("measures")
        if isinstance(measures, list) and any(isinstance(m, dict) and not isinstance(m.get("field"), (str, type(None))) for m in measures):
            raise ValidationFailed([FieldError("spec.measures", "a measure's field is the name of a number field", "type")])
        try:
            spec = ReportSpec.from_dict(raw)
        except RecordError as exc:
            raise ValidationFailed([FieldError(f"spec.{d.field}", d.message, d.code) for d in exc.details] or [FieldError("spec", exc.message)]) from None
        entity = self.site.registry.entities.get(spec.entity)
        if entity is None:
            raise ValidationFailed([FieldError("spec.entity", f"unknown entity '{spec.entity}'", "unknown_entity")])
        if self.site.access.scope(actor, entity, "read") is None:
            raise Forbidden(f"you may not read {entity.name} records, so you cannot put a report of them on a dashboard")
        try:
            Reports(self.site).run(actor, ReportSpec(spec.entity, spec.group_by, spec.measures, spec.filters, spec.expressions, 1))
        except Forbidden:
            raise
        except RecordError as exc:
            details = [FieldError(f"spec.{d.field}", d.message, d.code) for d in exc.details] or [FieldError("spec", exc.message)]
            raise ValidationFailed(details) from None
        return spec.as_dict()

    def _default_title(self, spec: dict[str, Any]) -> str:
        entity = self.site.registry.entity(spec["entity"])
        groups = ", ".join(spec["group_by"])
        return f"{entity.plural_label.en} by {groups}" if groups else entity.plural_label.en

    def _roles_of(self, actor: Actor) -> set[str]:
        return set(self.site.access.store.grants(actor.user_id).roles) if actor.user_id is not None else set()

    @staticmethod
    def _board(row: Any) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "version": row.version, "owner_id": row.owner_id, "owner_name": row.owner_name, "sharing": row.sharing,
                "roles": json.loads(row.roles or "[]"), "widgets": json.loads(row.widgets or "[]"),
                "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
