"""Saved list views per user: a name and the list's query string."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class SavedViews:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_saved_view"]

    def of(self, user_id: int, entity: str) -> list[dict[str, Any]]:
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).where(self.table.c.user_id == user_id, self.table.c.entity == entity).order_by(self.table.c.name)).mappings()
            return [dict(r) for r in rows]

    def save(self, user_id: int, entity: str, name: str, params: str) -> None:
        name = name.strip()
        if not name or len(name) > 80:
            raise ValidationFailed([FieldError("name", "a view needs a name of 1-80 characters", "required")])
        with self.site.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.user_id == user_id, self.table.c.entity == entity, self.table.c.name == name))
            conn.execute(self.table.insert().values(user_id=user_id, entity=entity, name=name, params=params[:4000], created_at=utcnow()))

    def delete(self, user_id: int, entity: str, view_id: int) -> None:
        with self.site.engine.begin() as conn:
            done = conn.execute(self.table.delete().where(self.table.c.id == view_id, self.table.c.user_id == user_id, self.table.c.entity == entity))
        if done.rowcount == 0:
            raise NotFound(f"saved view {view_id} not found")
