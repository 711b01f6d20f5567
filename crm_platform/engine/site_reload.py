"""Keeping a running process on the metadata its database was migrated to: when another process
applies a new version (`pack install`, `db sync`, the designer), `RegistryWatcher.check()` sees
the new row in crm_metadata_version (one small query per interval) and switches the site to the
matching Registry, so every app process and worker serves a change within about a second. A
Registry that does not match what the database was migrated to is never served."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.reload")

DEFAULT_INTERVAL = 1.0


class RegistryWatcher:
    def __init__(self, site: Site, interval: float = DEFAULT_INTERVAL) -> None:
        self.site = site
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()
        self._refused: str | None = None  # a version that did not load: not retried every second

    def latest_hash(self) -> str | None:
        versions = self.site.schema.system["crm_metadata_version"]
        with self.site.engine.connect() as conn:
            return conn.execute(sa.select(versions.c.content_hash).order_by(versions.c.id.desc()).limit(1)).scalar()

    def check(self, force: bool = False) -> bool:
        """Switch to the database's metadata version if it changed; True when it switched."""
        now = time.monotonic()
        if not force and now < self._next:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking
        try:
            self._next = now + self.interval
            latest = self.latest_hash()
            if latest is None or latest == self.site.registry.content_hash or latest == self._refused:
                return False
            from crm_platform.engine.site_layer import pack_refs

            try:
                registry = load_registry(pack_refs(self.site.settings, self.site.engine))
            except PackError as exc:
                log.error("the database moved to metadata %s but the packs do not load here: %s", latest[:12], exc)
                self._refused = latest
                return False
            if registry.content_hash != latest:
                log.error("the database moved to metadata %s; this process's packs give %s: still serving %s",
                          latest[:12], registry.content_hash[:12], self.site.registry.content_hash[:12])
                self._refused = latest
                return False
            self.site.switch_registry(registry)
            log.info("now serving metadata %s", latest[:12])
            return True
        finally:
            self._lock.release()
