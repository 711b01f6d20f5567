"""Record service overhead: create (through the service and through the REST API) and a list
page, against bare SQLAlchemy Core on the same table.

Run: .venv/bin/python benchmarks/bench_records.py [--rows 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import sqlalchemy as sa  # noqa: E402

from benchmarks.measure import Measurement, open_site, timed  # noqa: E402
from crm_platform.engine.column_types import utcnow  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.records.list_query import parse_list_params  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402

KINDS = ["customer", "dealer", "public_body"]
_names = itertools.count()


def fill(site: Site, rows: int) -> None:
    """`rows` plain companies, bulk-inserted."""
    table = site.schema.tables["company"]
    now = utcnow()
    with site.engine.begin() as conn:
        conn.execute(table.insert(), [{"name": f"Company {i:07d}", "kind": KINDS[i % 3], "revenue": i * 10,
                                       "employees": i % 500, "created_at": now, "updated_at": now, "version": 1}
                                      for i in range(rows)])


def bare_insert(site: Site) -> None:
    """The baseline of a create: one Core INSERT of the same company in its own transaction."""
    table = site.schema.tables["company"]
    with site.engine.begin() as conn:
        now = utcnow()
        conn.execute(table.insert().values(name=f"Bare {next(_names)}", kind="dealer", revenue=1000, created_at=now,
                                           updated_at=now, version=1))


def service_create(site: Site, repeat: int) -> Measurement:
    actor = Actor.system()
    samples = timed(lambda: site.records.create(actor, "company", {"name": f"Bench {next(_names)}", "kind": "dealer",
                                                                   "revenue": "1000.50"}), repeat)
    return Measurement("create (record service)", samples, timed(lambda: bare_insert(site), repeat), "bare insert")


def api_create(site: Site, repeat: int) -> Measurement:
    """POST /api/v1/records/company with a bearer token, in-process (Starlette's TestClient: the
    whole app, no network), against the bare insert."""
    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app

    user_id = site.users.create_user(f"bench{next(_names)}", "bench-password-1", "Bench", is_admin=True)
    token, _ = site.users.create_token(user_id, "bench")
    with TestClient(create_app(site), base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {token}"

        def post() -> None:
            response = client.post("/api/v1/records/company", json={"name": f"Api {next(_names)}", "kind": "dealer",
                                                                    "revenue": "1000.50"})
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/v1/records/company answered {response.status_code}: {response.text[:300]}")

        samples = timed(post, repeat)
    return Measurement("create via API (POST, in-process)", samples, timed(lambda: bare_insert(site), repeat),
                       "bare insert")


def service_list(site: Site, repeat: int) -> Measurement:
    table = site.schema.tables["company"]
    query = parse_list_params(site.registry.entity("company"), [("kind", "dealer"), ("sort", "-revenue"), ("page_size", "50")])
    actor = Actor.system()

    def bare_list() -> None:
        where = (table.c.kind == "dealer") & table.c.deleted_at.is_(None)
        with site.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
            conn.execute(sa.select(table).where(where).order_by(table.c.revenue.desc(), table.c.id.desc()).limit(50)).all()

    return Measurement("list page (record service)", timed(lambda: site.records.list(actor, "company", query), repeat),
                       timed(bare_list, repeat), "bare select")


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    site = open_site(args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}", var_dir=folder / "var")
    fill(site, args.rows)
    print(f"database: {site.engine.dialect.name}, {args.rows} rows")
    for result in (service_create(site, 200), api_create(site, 200), service_list(site, 100)):
        print(result.line())
    site.dispose()


if __name__ == "__main__":
    main()
