"""Fixtures: a site on the test database (SQLite file, or a fresh PostgreSQL schema per test)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
import sqlalchemy as sa

from crm_platform.config import Settings
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry

REPO = Path(__file__).resolve().parent.parent
PACKS = REPO / "packs"
FIXTURE_PACKS = REPO / "tests" / "fixtures" / "packs"
PG_URL = os.environ.get("CRM_TEST_DATABASE_URL")


# Property and fuzz tests explore new examples on every local run; CI runs a fixed, derandomized
# set so a submission's result does not depend on luck.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite'}"


@pytest.fixture(scope="session")
def standard_registry() -> Registry:
    return load_registry(["crm_standard"], [PACKS])


@pytest.fixture(scope="session")
def testkit_registry() -> Registry:
    return load_registry(["testkit"], [FIXTURE_PACKS])


@pytest.fixture
def kit(make_site: Callable[..., Site], testkit_registry: Registry) -> Site:
    """A site with the small `testkit` pack (every field type, a child table, an N:N link)."""
    return make_site(testkit_registry)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database no other test uses: a SQLite file, or a new schema on the test PostgreSQL."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def make_site(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Open sites on this test's database: make_site(registry) or make_site(['pack'], search=[path])."""
    opened: list[Site] = []

    def factory(registry: Registry | list[str], search: list[Path] | None = None, sync: bool = True, allow_destructive: bool = False) -> Site:
        if not isinstance(registry, Registry):
            registry = load_registry(registry, search or [PACKS])
        settings = Settings(database_url=database_url, packs=tuple(p.name for p in registry.packs), var_dir=tmp_path / "var", secret_key="test-secret")
        site = Site.open(settings, registry)
        opened.append(site)
        if sync:
            site.sync(allow_destructive=allow_destructive, applied_by="test")
        return site

    yield factory
    for site in opened:
        site.dispose()


@pytest.fixture
def site(make_site: Callable[..., Site], standard_registry: Registry) -> Site:
    return make_site(standard_registry)


@pytest.fixture
def admin(site: Site) -> Actor:
    user_id = site.users.create_user("admin", "admin-password", "Admin", is_admin=True)
    actor = site.users.actor(user_id)
    assert actor is not None
    return actor
