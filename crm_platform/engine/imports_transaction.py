"""The record service inside an import's one transaction: every write it makes joins that
transaction (a savepoint per call), so the import decides what is kept and when it commits.

    bound = SiteInTransaction(site, conn)
    bound.records.update(actor, "account", 12, {...})   # a savepoint of `conn`
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class _ConnectionView:
    """The import's connection lent to code that opens and ends reads of its own."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def rollback(self) -> None:  # a read's own end: the import's transaction goes on
        pass

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class _TransactionEngine:
    """An engine whose transactions are savepoints of one open transaction."""

    def __init__(self, conn: sa.Connection, engine: sa.Engine) -> None:
        self._conn = conn
        self._engine = engine

    @property
    def dialect(self) -> Any:
        return self._engine.dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        with self._conn.begin_nested():
            yield self._conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        yield _ConnectionView(self._conn)


class SiteInTransaction:
    """The site as the record service sees it during an import: every write it makes joins the
    import's transaction (a savepoint per record), so the import decides what is kept. Jobs the
    writes add (workflow timers) are delivered after the commit."""

    def __init__(self, site: Site, conn: sa.Connection) -> None:
        from crm_platform.engine.records.service import RecordService

        self._site = site
        self.engine = _TransactionEngine(conn, site.engine)
        self.settings = dataclasses.replace(site.settings, redis_url=None)
        self.records = RecordService(self)  # type: ignore[arg-type]  # a Site in all the service uses

    def __getattr__(self, name: str) -> Any:
        return getattr(self._site, name)
