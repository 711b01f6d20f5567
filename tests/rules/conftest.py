"""Fixtures of the rules tests: the testkit Registry and its tables on each test database."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from crm_platform.metadata.model import Registry
from tests.rules.sqlkit import KitDatabase, open_database

PG_URL = os.environ.get("CRM_TEST_DATABASE_URL")
DATABASES = ["sqlite", *(["postgresql"] if PG_URL else [])]


@pytest.fixture(scope="session")
def registry(testkit_registry: Registry) -> Registry:
    return testkit_registry


@pytest.fixture(scope="module", params=DATABASES)
def kit_db(request: pytest.FixtureRequest, testkit_registry: Registry) -> Iterator[KitDatabase]:
    """The testkit tables on SQLite (in memory) and, with CRM_TEST_DATABASE_URL, PostgreSQL."""
    url = None if request.param == "sqlite" else PG_URL
    with open_database(testkit_registry, url) as database:
        yield database
