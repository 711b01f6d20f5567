"""List page and search at scale: through the record service against the bare SQL behind them.

Builds a site with the test kit pack (entity `company`: search fields name and email, a
picklist `kind`, money `revenue`), bulk-inserts --rows companies with varied Chinese and
English names (plain executemany in batches: the search index is filled by its triggers, as
for any bulk load), then times:

  list page   kind=dealer, sorted by -revenue, 50 rows, with the total
  search      q=<text>, sorted by name, 50 rows, with the total, for a few kinds of query

each through `site.records.list` (server time: permissions, query, rows to dicts, titles) and
as the bare SQLAlchemy Core statements behind it (count + page), and prints medians, p95 and
the ratio. For comparison it also times the LIKE scan that search used to be (a few runs).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import sqlalchemy as sa  # noqa: E402

from benchmarks.measure import Measurement, open_site, p95, timed  # noqa: E402
from crm_platform.engine.column_types import utcnow  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.records.list_query import parse_list_params, search_clause  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402

CITIES = [("佛山", "Foshan"), ("广州", "Guangzhou"), ("深圳", "Shenzhen"), ("东莞", "Dongguan"), ("中山", "Zhongshan"),
          ("珠海", "Zhuhai"), ("江门", "Jiangmen"), ("肇庆", "Zhaoqing"), ("上海", "Shanghai"), ("北京", "Beijing"),
          ("杭州", "Hangzhou"), ("苏州", "Suzhou"), ("宁波", "Ningbo"), ("温州", "Wenzhou"), ("南京", "Nanjing"),
          ("成都", "Chengdu"), ("重庆", "Chongqing"), ("武汉", "Wuhan"), ("长沙", "Changsha"), ("西安", "Xian"),
          ("青岛", "Qingdao"), ("厦门", "Xiamen"), ("泉州", "Quanzhou"), ("晋江", "Jinjiang"), ("潮州", "Chaozhou"),
          ("景德镇", "Jingdezhen"), ("淄博", "Zibo"), ("唐山", "Tangshan"), ("临沂", "Linyi"), ("郑州", "Zhengzhou")]
BRAND_CHARS = [("华", "hua"), ("鑫", "xin"), ("宏", "hong"), ("达", "da"), ("盛", "sheng"), ("兴", "xing"), ("隆", "long"),
               ("源", "yuan"), ("泰", "tai"), ("嘉", "jia"), ("新", "xin"), ("恒", "heng"), ("金", "jin"), ("美", "mei"),
               ("永", "yong"), ("丰", "feng"), ("顺", "shun"), ("利", "li"), ("联", "lian"), ("创", "chuang"), ("科", "ke"),
               ("天", "tian"), ("瑞", "rui"), ("祥", "xiang"), ("福", "fu"), ("佳", "jia"), ("信", "xin"), ("德", "de"),
               ("安", "an"), ("和", "he"), ("东", "dong"), ("方", "fang"), ("中", "zhong"), ("正", "zheng"), ("大", "da"),
               ("星", "xing"), ("汇", "hui"), ("通", "tong"), ("昌", "chang"), ("荣", "rong"), ("海", "hai"), ("万", "wan"),
               ("欧", "ou"), ("雅", "ya"), ("艺", "yi"), ("诺", "nuo"), ("贝", "bei"), ("博", "bo"), ("宇", "yu"),
               ("辉", "hui"), ("晶", "jing"), ("骏", "jun"), ("凯", "kai"), ("旭", "xu"), ("腾", "teng"), ("龙", "long"),
               ("锦", "jin"), ("宝", "bao"), ("豪", "hao"), ("威", "wei"), ("冠", "guan"), ("卓", "zhuo"), ("越", "yue"),
               ("明", "ming"), ("光", "guang"), ("亚", "ya"), ("世", "shi"), ("纪", "ji"), ("蓝", "lan"), ("翔", "xiang")]
INDUSTRIES = [("陶瓷", "Ceramics"), ("建材", "Building Materials"), ("卫浴", "Sanitary Ware"), ("瓷砖", "Tiles"),
              ("家居", "Home Furnishing"), ("五金", "Hardware"), ("贸易", "Trading"), ("装饰", "Decoration"),
              ("石材", "Stone"), ("玻璃", "Glass"), ("科技", "Technology"), ("电器", "Appliances"), ("物流", "Logistics"),
              ("照明", "Lighting"), ("门窗", "Doors and Windows"), ("涂料", "Coatings"), ("家具", "Furniture"),
              ("化工", "Chemicals"), ("机械", "Machinery"), ("纺织", "Textiles")]
ZH_SUFFIXES = ["有限公司", "有限公司", "股份有限公司", "贸易有限公司", "实业有限公司", "集团有限公司", "商行", "经营部"]
EN_WORDS = ["Golden", "Dragon", "Pacific", "Sunrise", "Star", "Ocean", "Summit", "Harmony", "Lotus", "Phoenix", "Jade",
            "Evergreen", "Crown", "Union", "Victory", "Orient", "Silver", "Prime", "Grand", "Bright"]
EN_SUFFIXES = ["Co., Ltd.", "Co., Ltd.", "Group", "Inc.", "Trading Co.", "Import & Export Co., Ltd.", "Industrial Co., Ltd."]
DOMAINS = ["163.com", "qq.com", "126.com", "sina.com", "outlook.com", "gmail.com"]
KINDS = ["customer", "dealer", "public_body"]

# Searches a user types: (label, text). The last two are broad on purpose.
SEARCHES = [
    ("company name, zh (4 chars)", "华鑫陶瓷"),
    ("company name, en (2 words)", "golden ceramics"),
    ("email fragment", "xinhua8"),
    ("brand, zh (2 chars)", "华鑫"),
    ("city, zh (2 chars, broad)", "佛山"),
    ("industry, en (broad)", "ceramics"),
]


def companies(rows: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = utcnow()
    for i in range(rows):
        city_zh, city_en = rng.choice(CITIES)
        (b1, p1), (b2, p2) = rng.choice(BRAND_CHARS), rng.choice(BRAND_CHARS)
        industry_zh, industry_en = rng.choice(INDUSTRIES)
        if rng.random() < 0.6:
            name = f"{city_zh}{b1}{b2}{industry_zh}{rng.choice(ZH_SUFFIXES)}"
        else:
            brand = f"{p1.capitalize()}{p2}" if rng.random() < 0.6 else rng.choice(EN_WORDS)
            place = f"{city_en} " if rng.random() < 0.5 else ""
            name = f"{place}{brand} {industry_en} {rng.choice(EN_SUFFIXES)}"
        email = f"{p1}{p2}{rng.randrange(1000)}@{rng.choice(DOMAINS)}" if rng.random() < 0.8 else None
        yield {"name": name, "email": email, "kind": KINDS[i % 3], "revenue": rng.randrange(10**9) / 100,
               "employees": rng.randrange(5000), "created_at": now, "updated_at": now, "version": 1}


def analyze(site: Site) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL)."""
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE ent_company")


def load(site: Site, rows: int, batch: int = 20000) -> float:
    table = site.schema.tables["company"]
    start = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for row in companies(rows):
        chunk.append(row)
        if len(chunk) == batch:
            with site.engine.begin() as conn:
                conn.execute(table.insert(), chunk)
            chunk = []
    if chunk:
        with site.engine.begin() as conn:
            conn.execute(table.insert(), chunk)
    return time.perf_counter() - start


def bare_page(site: Site, where: sa.ColumnElement[bool], *order: sa.ColumnElement[Any]) -> Callable[[], None]:
    """The bare SQL behind a list page: the total count and a page of 50."""
    table = site.schema.tables["company"]

    def run() -> None:
        with site.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
            conn.execute(sa.select(table).where(where).order_by(*order).limit(50)).all()
    return run


def service_page(site: Site, params: list[tuple[str, str]]) -> Callable[[], object]:
    query = parse_list_params(site.registry.entity("company"), [*params, ("page_size", "50")])
    actor = Actor.system()
    return lambda: site.records.list(actor, "company", query)


def list_page(site: Site, repeat: int) -> Measurement:
    """kind=dealer sorted by -revenue, 50 rows with the total, against the bare count + page."""
    table = site.schema.tables["company"]
    params = [("kind", "dealer"), ("sort", "-revenue")]
    total = site.records.list(Actor.system(), "company", parse_list_params(site.registry.entity("company"), params)).total
    return Measurement("list page kind=dealer sort=-revenue", timed(service_page(site, params), repeat, warmup=2),
                       timed(bare_page(site, (table.c.kind == "dealer") & table.c.deleted_at.is_(None),
                                       table.c.revenue.desc(), table.c.id.desc()), repeat, warmup=2),
                       "bare SQL", f"{total} rows in total")


def search(site: Site, repeat: int, label: str, text: str) -> Measurement:
    """q=<text> sorted by name, 50 rows with the total, against the bare full-text count + page."""
    entity, table = site.registry.entity("company"), site.schema.tables["company"]
    total = site.records.list(Actor.system(), "company", parse_list_params(entity, [("q", text)])).total
    where = table.c.deleted_at.is_(None) & search_clause(entity, table, text)
    return Measurement(f"search {label}", timed(service_page(site, [("q", text), ("sort", "name")]), repeat, warmup=2),
                       timed(bare_page(site, where, table.c.name, table.c.id), repeat, warmup=2), "bare SQL",
                       f"{total} found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_list_"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    site = open_site(url, var_dir=tmp)
    seconds = load(site, args.rows)
    print(f"database: {site.engine.dialect.name}, {args.rows} companies loaded in {seconds:.1f} s "
          f"({args.rows / seconds:,.0f} rows/s, the search index updated by every insert)")
    analyze(site)
    table = site.schema.tables["company"]
    alive = table.c.deleted_at.is_(None)
    listed = list_page(site, args.repeat)
    results = [listed] + [search(site, args.repeat, label, text) for label, text in SEARCHES]
    print("\n".join(r.line() for r in results))
    print("\nThe LIKE scan search used to be (3 runs, bare SQL):")
    for label, text in SEARCHES[:2]:
        like = sa.and_(*(sa.or_(table.c.name.ilike(f"%{w}%"), table.c.email.ilike(f"%{w}%")) for w in text.split()))
        scan = timed(bare_page(site, alive & like, table.c.name, table.c.id), 3, warmup=1)
        print(f"  {label:42} median {statistics.median(scan):8.2f} ms")
    what_if_list(site, args.repeat, listed.samples)
    site.dispose()
    shutil.rmtree(tmp, ignore_errors=True)  # the SQLite file (unless --database-url) and the site's var folder


def what_if_list(site: Site, repeat: int, listed: list[float]) -> None:
    """Where the list page's time goes, and what an index covering filter + sort would change."""
    table = site.schema.tables["company"]
    where = (table.c.kind == "dealer") & table.c.deleted_at.is_(None)
    order = (table.c.revenue.desc(), table.c.id.desc())

    def count() -> None:
        with site.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()

    def page() -> None:
        with site.engine.connect() as conn:
            conn.execute(sa.select(table).where(where).order_by(*order).limit(50)).all()

    def capped() -> None:  # "10,000+ records": count at most 10,001 rows
        with site.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(sa.select(table.c.id).where(where).limit(10001).subquery())).scalar_one()

    print("\nWhat-if for the list page (bare SQL unless named):")
    print(f"  {'total COUNT alone':42} median {statistics.median(timed(count, repeat)):8.2f} ms")
    print(f"  {'page of 50 alone':42} median {statistics.median(timed(page, repeat)):8.2f} ms")
    print(f"  {'capped count (10,001 rows at most)':42} median {statistics.median(timed(capped, repeat)):8.2f} ms")
    with site.engine.begin() as conn:  # not something the platform declares today
        conn.exec_driver_sql("CREATE INDEX bench_company_kind_alive_revenue ON ent_company (kind, deleted_at, revenue)")
        conn.exec_driver_sql("ANALYZE ent_company" if conn.dialect.name == "postgresql" else "SELECT 1")
    actor = Actor.system()
    query = parse_list_params(site.registry.entity("company"), [("kind", "dealer"), ("sort", "-revenue"), ("page_size", "50")])
    after = timed(lambda: site.records.list(actor, "company", query), repeat)
    print("  with an index on (kind, deleted_at, revenue):")
    print(f"  {'  total COUNT alone':42} median {statistics.median(timed(count, repeat)):8.2f} ms")
    print(f"  {'  page of 50 alone':42} median {statistics.median(timed(page, repeat)):8.2f} ms")
    print(f"  {'  capped count':42} median {statistics.median(timed(capped, repeat)):8.2f} ms")
    print(f"  {'  list page through the service':42} median {statistics.median(after):8.2f} ms  p95 {p95(after):8.2f} ms"
          f"  (was {statistics.median(listed):.2f} ms)")


if __name__ == "__main__":
    main()
