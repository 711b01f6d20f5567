"""Stored files (for file fields and attachments): content on disk under var/files by SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

_UNSAFE = re.compile(r"[^\w.\- ()\u4e00-\u9fff]+")


def safe_name(name: str | None) -> str:
    return _UNSAFE.sub("_", name or "file")[:255] or "file"


class FileStore:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_file"]
        self.root = site.settings.var_dir / "files"

    def save(self, data: bytes, name: str | None, content_type: str | None, user_id: int | None, conn: sa.Connection | None = None) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest}"
        path = self.root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{digest}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        row = {"name": safe_name(name), "content_type": (content_type or "application/octet-stream")[:127], "size": len(data),
               "sha256": digest, "storage_key": key, "created_by": user_id, "created_at": utcnow()}
        if conn is None:
            with self.site.engine.begin() as own:
                row["id"] = own.execute(self.table.insert().values(**row).returning(self.table.c.id)).scalar_one()
        else:
            row["id"] = conn.execute(self.table.insert().values(**row).returning(self.table.c.id)).scalar_one()
        return row

    def check_readable(self, actor: Any, file_id: int) -> None:
        """A file is readable by whoever uploaded it, and by whoever may read a record it is
        attached to or stored in (a file field); otherwise it does not exist (404)."""
        if actor.is_admin:
            return
        with self.site.engine.connect() as conn:
            uploader = conn.execute(sa.select(self.table.c.created_by).where(self.table.c.id == file_id)).first()
            if uploader is None:
                raise NotFound(f"file {file_id} not found")
            if uploader.created_by is not None and uploader.created_by == actor.user_id:
                return
            holders: list[tuple[str, int]] = []
            attachments = self.site.schema.system["crm_attachment"]
            holders += [(r.entity, r.record_id) for r in conn.execute(sa.select(attachments.c.entity, attachments.c.record_id).where(attachments.c.file_id == file_id))]
            for entity in self.site.registry.entities.values():
                table = self.site.schema.tables[entity.name]
                for f in entity.fields:
                    if f.type == "file":
                        holders += [(entity.name, rid) for rid in conn.execute(sa.select(table.c.id).where(table.c[f.name] == file_id)).scalars()]
        for entity_name, record_id in holders:
            try:
                self.site.records.get(actor, entity_name, record_id, include_deleted=True)
                return
            except (NotFound, Forbidden):
                continue
        raise NotFound(f"file {file_id} not found")

    def open(self, file_id: int) -> tuple[dict[str, Any], Path]:
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.id == file_id)).mappings().first()
        if row is None:
            raise NotFound(f"file {file_id} not found")
        path = self.root / row["storage_key"]
        if not path.is_file():
            raise NotFound(f"the content of file {file_id} is missing from storage")
        return dict(row), path


class Attachments:
    """Files attached to a record (shown on its detail screen)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_attachment"]
        self.files = site.schema.system["crm_file"]
        self.users = site.schema.system["crm_user"]

    def attach(self, entity: str, record_id: int, data: bytes, name: str | None, content_type: str | None, user_id: int | None) -> dict[str, Any]:
        with self.site.engine.begin() as conn:
            stored = FileStore(self.site).save(data, name, content_type, user_id, conn)
            attachment_id = conn.execute(self.table.insert().values(entity=entity, record_id=record_id, file_id=stored["id"], created_by=user_id, created_at=utcnow()).returning(self.table.c.id)).scalar_one()
        return {"id": attachment_id, **{k: stored[k] for k in ("name", "size", "content_type")}, "file_id": stored["id"]}

    def of(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        query = (
            sa.select(self.table.c.id, self.table.c.file_id, self.table.c.created_at, self.files.c.name, self.files.c.size, self.files.c.content_type, self.users.c.username)
            .select_from(self.table.join(self.files, self.files.c.id == self.table.c.file_id).outerjoin(self.users, self.users.c.id == self.table.c.created_by))
            .where(self.table.c.entity == entity, self.table.c.record_id == record_id)
            .order_by(self.table.c.id.desc())
        )
        with self.site.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def file_of(self, entity: str, record_id: int, attachment_id: int) -> int:
        with self.site.engine.connect() as conn:
            file_id = conn.execute(sa.select(self.table.c.file_id).where(self.table.c.id == attachment_id, self.table.c.entity == entity, self.table.c.record_id == record_id)).scalar()
        if file_id is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return int(file_id)
