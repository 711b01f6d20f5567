"""A site: one database, the Registry it serves, and the services built on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_platform.config import Settings
from crm_platform.engine.database import make_engine
from crm_platform.engine.entity_tables import Schema, build_schema
from crm_platform.engine.migration.apply import apply_plan
from crm_platform.engine.migration.plan import Plan
from crm_platform.engine.migration.planner import make_plan
from crm_platform.engine.permissions.admin import sync_pack_roles
from crm_platform.engine.search_index import sync_search_indexes
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from crm_platform.rules.site_rules import SiteRules, compile_site_rules


@dataclass
class Site:
    settings: Settings
    engine: Engine
    registry: Registry
    schema: Schema = field(init=False)
    rules: SiteRules = field(init=False)

    def __post_init__(self) -> None:
        self.rules = compile_site_rules(self.registry)  # raises PackError: never serve rules that do not compile
        self.schema = build_schema(self.registry)

    @classmethod
    def open(cls, settings: Settings, registry: Registry | None = None) -> Site:
        """Load the configured packs (raises PackError) and connect to the database."""
        engine = make_engine(settings.database_url)
        if registry is None:
            from crm_platform.engine.site_layer import pack_refs

            registry = load_registry(pack_refs(settings, engine))
        return cls(settings, engine, registry)

    def plan(self, allow_destructive: bool = False) -> Plan:
        with self.engine.connect() as conn:
            plan = make_plan(conn, self.registry, self.schema, allow_destructive)
            conn.rollback()
        return plan

    def sync(self, allow_destructive: bool = False, applied_by: str = "cli", also: Callable[[sa.Connection], None] | None = None) -> Plan:
        """Plan and apply in one transaction (with `also(conn)`, e.g. recording an installed
        pack); raises PlanRefused without changing anything."""
        with self.engine.begin() as conn:
            plan = make_plan(conn, self.registry, self.schema, allow_destructive)
            apply_plan(conn, plan, self.registry, self.schema, applied_by)
            sync_search_indexes(conn, self.registry, self.schema)
            sync_pack_roles(conn, self.schema.system, self.registry)
            if also is not None:
                also(conn)
        return plan

    def switch_registry(self, registry: Registry) -> None:
        """Serve a new Registry (after its schema was synced)."""
        self.rules = compile_site_rules(registry)
        self.registry = registry
        self.schema = build_schema(registry)
        self.__dict__.pop("records", None)
        self.__dict__.pop("users", None)
        self.__dict__.pop("access", None)
        self.__dict__.pop("permissions", None)
        self.__dict__.pop("workflows", None)
        self.__dict__.pop("approvals", None)

    @cached_property
    def records(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.records.service import RecordService

        return RecordService(self)

    @cached_property
    def access(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.permissions.access import AccessControl

        return AccessControl(self)

    @cached_property
    def workflows(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.workflow import WorkflowService

        return WorkflowService(self)

    @cached_property
    def approvals(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.approvals import ApprovalService

        return ApprovalService(self)

    @cached_property
    def permissions(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.permissions.admin import PermissionAdmin

        return PermissionAdmin(self)

    @cached_property
    def users(self):  # type: ignore[no-untyped-def]
        from crm_platform.engine.auth import UserService

        return UserService(self)

    def dispose(self) -> None:
        self.engine.dispose()


def table_exists(engine: Engine, name: str) -> bool:
    return sa.inspect(engine).has_table(name)
