"""Full-text search: an index per entity over its search fields, kept current by the database.

What a search means (both databases): the text is split into words at whitespace; a record
matches when every word occurs, case-insensitively and literally (no wildcards, no query
syntax: %, _, quotes, *, OR, NEAR are plain characters), as a substring of at least one of
the searched fields (the entity's `search_fields`, or its title field when it declares none).
Chinese needs no spaces: '佛山' finds '佛山陶瓷贸易有限公司'.

SQLite: a contentless FTS5 table `ent_<entity>$fts` with the `trigram` tokenizer and one
column per search field (`f_<field>`), filled by three triggers on the entity table (after
insert, after update of a search field, after delete), so rows written by any SQL (the record
service, bulk loads, the sqlite3 shell) are indexed in the same transaction. The triggers
index each value followed by two spaces, so every character of a value starts a trigram.
  - A word of 3 or more characters is an FTS5 phrase; a trigram phrase is a substring match.
  - A word of 1 or 2 characters has no trigram to look up. It is looked up in the index's
    term list (the fts5vocab table `ent_<entity>$fts_terms`): the records holding a trigram
    that starts with the word, which (thanks to the padding) are exactly the records
    containing it. This reads the index, not the table, but a short word that occurs in most
    records ('公司', 'a') returns most records, and counting them costs what that many
    matches cost.

PostgreSQL: a GIN expression index per search field, `crm_search_grams_v1(<field>::text)`,
the set of every substring of 1 to 3 characters of each whitespace-separated token of the
lowercased value. A word of 3 or more characters is looked up by its trigrams and rechecked
with strpos (the trigrams do not fix their order); a word of 1 or 2 characters is one exact
element lookup. The functions are plain SQL (no extension to install) and find Chinese under
any database locale (pg_trgm ignores non-ASCII letters under the C locale). PostgreSQL keeps
a GIN index current on every write.

Searching a subset of the search fields (fields hidden from a user) uses the same index:
an FTS5 column filter on SQLite, fewer per-field indexes on PostgreSQL.

`sync_search_indexes` runs inside `Site.sync`, after the schema changes, in the same
transaction: it creates what is missing, and drops and rebuilds an index whose definition
no longer matches the Registry (search fields changed, a column renamed or archived,
triggers lost when a table was rebuilt). An entity without search fields has no index, and
a search on it matches nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from crm_platform.engine.entity_tables import Schema
from crm_platform.metadata.model import Entity, Registry

#: Words shorter than this cannot be trigram queries (see the module doc for what happens).
TRIGRAM = 3
_PAD = "  "  # appended to each value in the SQLite index: every character then starts a trigram
_MAX_CHAR = "\U0010ffff"
_PG_GRAMS = "crm_search_grams_v1"
_PG_QUERY_GRAMS = "crm_search_query_grams_v1"
_PG_COMMENT = "crm search v1"
# Computing the grams of a value takes tens of microseconds: telling the planner so keeps it from
# walking an ordered index and computing them per row to find a page of matches (seconds on a
# large table) instead of asking the search index and sorting the matches.
_PG_GRAMS_COST = 5000
# A GIN index collects new entries in a pending list that every search reads in full until it
# is merged; the default 4 MB made searches after a bulk load 5-10x slower. 256 kB bounds that.
_PG_INDEX_OPTIONS = ("gin_pending_list_limit=256",)


def search_columns(entity: Entity, table: sa.Table, hidden: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns searched for `entity`: its search fields (else its title field), less `hidden`."""
    names = entity.search_fields or ((entity.title_field,) if entity.title_field else ())
    skip = set(hidden)
    return tuple(name for name in names if name in table.c and name not in skip)


# -- names ------------------------------------------------------------------------------------
# Entity and field names are [a-z][a-z0-9_]*, so a '$' never occurs in them: these names (and
# FTS5's shadow tables '<name>_data', '<name>_idx', '<name>_config') cannot collide with
# another entity's tables, indexes or search structures.
def fts_table_name(table: str) -> str:
    return f"{table}$fts"


def fts_terms_name(table: str) -> str:
    return f"{table}$fts_terms"


def fts_column(column: str) -> str:
    return f"f_{column}"  # FTS5 reserves the column names 'rank' and 'rowid'


def _trigger_names(table: str) -> tuple[str, str, str]:
    return f"{table}$fts_ai", f"{table}$fts_au", f"{table}$fts_ad"


def pg_index_name(table: str, column: str) -> str:
    name = f"{table}$search_{column}"
    if len(name) <= 63:
        return name
    return f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _quote(dialect: sa.Dialect, name: str) -> str:
    return dialect.identifier_preparer.quote_identifier(name)


# -- keeping the structures in line with the Registry -----------------------------------------
def sync_search_indexes(conn: sa.Connection, registry: Registry, schema: Schema) -> list[str]:
    """Create, verify or rebuild the search index of every entity (inside the caller's transaction).

    Returns a description of each change made (empty when everything was already current).
    """
    wanted: dict[str, tuple[str, ...]] = {}
    for entity in registry.entities.values():
        table = schema.tables[entity.name]
        columns = search_columns(entity, table)
        if columns:
            wanted[table.name] = columns
    if conn.dialect.name == "sqlite":
        return _SqliteIndexes(conn).sync(wanted)
    if conn.dialect.name == "postgresql":
        return _PostgresIndexes(conn).sync(wanted)
    raise RuntimeError(f"search indexes are implemented for SQLite and PostgreSQL, not {conn.dialect.name}")


class _SqliteIndexes:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def q(self, name: str) -> str:
        return _quote(self.conn.dialect, name)

    def _values(self, prefix: str, columns: Sequence[str]) -> str:
        return ", ".join(f"coalesce({prefix}{self.q(c)}, '') || '{_PAD}'" for c in columns)

    def ddl(self, table: str, columns: Sequence[str]) -> dict[str, tuple[str, str]]:
        """name -> (type, CREATE statement) of each object of `table`'s index, as sqlite_master keeps it."""
        q = self.q
        fts, terms = fts_table_name(table), fts_terms_name(table)
        ai, au, ad = _trigger_names(table)
        slots = ", ".join(fts_column(c) for c in columns)
        insert_new = f"INSERT INTO {q(fts)}(rowid, {slots}) VALUES (new.id, {self._values('new.', columns)});"
        delete_old = f"INSERT INTO {q(fts)}({q(fts)}, rowid, {slots}) VALUES ('delete', old.id, {self._values('old.', columns)});"
        watched = ", ".join(q(c) for c in columns)
        return {
            fts: ("table", f"CREATE VIRTUAL TABLE {q(fts)} USING fts5({slots}, content='', columnsize=0, tokenize='trigram case_sensitive 0')"),
            terms: ("table", f"CREATE VIRTUAL TABLE {q(terms)} USING fts5vocab({q(fts)}, 'instance')"),
            ai: ("trigger", f"CREATE TRIGGER {q(ai)} AFTER INSERT ON {q(table)} BEGIN {insert_new} END"),
            au: ("trigger", f"CREATE TRIGGER {q(au)} AFTER UPDATE OF {watched} ON {q(table)} BEGIN {delete_old} {insert_new} END"),
            ad: ("trigger", f"CREATE TRIGGER {q(ad)} AFTER DELETE ON {q(table)} BEGIN {delete_old} END"),
        }

    def existing(self) -> dict[str, tuple[str, str, str]]:
        """Our objects in the database: name -> (type, entity table it belongs to, sql)."""
        rows = self.conn.exec_driver_sql(
            "SELECT name, type, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'trigger') AND instr(name, '$fts') > 0"
        ).all()
        found: dict[str, tuple[str, str, str]] = {}
        for name, kind, tbl_name, sql in rows:
            if kind == "table" and name.endswith(("$fts", "$fts_terms")):
                found[name] = (kind, name.rsplit("$", 1)[0], sql or "")
            elif kind == "trigger" and name in _trigger_names(tbl_name):
                found[name] = (kind, tbl_name, sql or "")
        return found

    def sync(self, wanted: dict[str, tuple[str, ...]]) -> list[str]:
        existing = self.existing()
        changes: list[str] = []
        for table in sorted({owner for _, owner, _ in existing.values()} - set(wanted)):
            self.drop(table)
            changes.append(f"drop the search index of {table} (no search fields, or no entity)")
        for table, columns in wanted.items():
            expected = self.ddl(table, columns)
            current = {name: (kind, sql) for name, (kind, owner, sql) in existing.items() if owner == table}
            if current == expected:
                continue
            self.drop(table)
            for _, sql in expected.values():
                self.conn.exec_driver_sql(sql)
            slots = ", ".join(fts_column(c) for c in columns)
            self.conn.exec_driver_sql(
                f"INSERT INTO {self.q(fts_table_name(table))}(rowid, {slots}) SELECT id, {self._values('', columns)} FROM {self.q(table)}"
            )
            changes.append(f"{'rebuild' if current else 'create'} the search index of {table} on {', '.join(columns)}")
        return changes

    def drop(self, table: str) -> None:
        for trigger in _trigger_names(table):
            self.conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {self.q(trigger)}")
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.q(fts_terms_name(table))}")
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.q(fts_table_name(table))}")


_PG_FUNCTIONS = {
    # Every substring of 1 to 3 characters of each whitespace-separated token of the lowercased text.
    _PG_GRAMS: f"""CREATE FUNCTION {_PG_GRAMS}(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST {_PG_GRAMS_COST} AS $$
  SELECT coalesce(array_agg(DISTINCT substr(w, i, n)), '{{}}')
  FROM regexp_split_to_table(lower(t), '\\s+') AS w, generate_series(1, length(w)) AS i, generate_series(1, {TRIGRAM}) AS n
  WHERE i + n - 1 <= length(w)
$$""",
    # The grams a value must hold to contain the word: its trigrams, or the word itself when shorter.
    _PG_QUERY_GRAMS: f"""CREATE FUNCTION {_PG_QUERY_GRAMS}(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN length(w) < {TRIGRAM} THEN ARRAY[w]
              ELSE ARRAY(SELECT DISTINCT substr(w, i, {TRIGRAM}) FROM generate_series(1, length(w) - {TRIGRAM - 1}) AS i) END
  FROM (SELECT lower(t) AS w) AS s
$$""",
}


class _PostgresIndexes:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def q(self, name: str) -> str:
        return _quote(self.conn.dialect, name)

    @staticmethod
    def comment(table: str, column: str) -> str:
        return f"{_PG_COMMENT}: {table}.{column}"

    def sync(self, wanted: dict[str, tuple[str, ...]]) -> list[str]:
        changes: list[str] = []
        for name, sql in _PG_FUNCTIONS.items():  # in the site's schema, where the unqualified calls find them first
            found = self.conn.execute(sa.text(
                "SELECT procost FROM pg_proc WHERE proname = :name AND pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
            ), {"name": name}).first()
            if found is None:
                self.conn.exec_driver_sql(sql)
                changes.append(f"create function {name}")
            elif name == _PG_GRAMS and found[0] != _PG_GRAMS_COST:
                self.conn.exec_driver_sql(f"ALTER FUNCTION {name}(text) COST {_PG_GRAMS_COST}")
                changes.append(f"set the cost of function {name}")
        want = {(table, column) for table, columns in wanted.items() for column in columns}
        kept: set[tuple[str, str]] = set()
        rebuilt: set[tuple[str, str]] = set()
        for index, (table, comment, reads, options) in sorted(self.existing().items()):
            key = (table, comment.split(".", 1)[-1])
            current = index == pg_index_name(*key) and comment == self.comment(*key) and reads == [key[1]] and options == list(_PG_INDEX_OPTIONS)
            if key in want and key not in kept and current:
                kept.add(key)
                continue
            self.conn.exec_driver_sql(f"DROP INDEX {self.q(index)}")
            if key in want:
                rebuilt.add(key)
            else:
                changes.append(f"drop the search index of {table}.{key[1]} (no longer a search field)")
        for table, column in sorted(want - kept):
            index = pg_index_name(table, column)
            self.conn.exec_driver_sql(
                f"CREATE INDEX {self.q(index)} ON {self.q(table)} USING gin ({_PG_GRAMS}({self.q(column)}::text)) WITH ({', '.join(_PG_INDEX_OPTIONS)})"
            )
            self.conn.exec_driver_sql(f"COMMENT ON INDEX {self.q(index)} IS '{self.comment(table, column)}'")
            changes.append(f"{'rebuild' if (table, column) in rebuilt else 'create'} the search index of {table}.{column}")
        return changes

    def existing(self) -> dict[str, tuple[str, str, list[str], list[str]]]:
        """Our indexes in the current schema: name -> (table, comment, the columns it reads, options)."""
        rows = self.conn.execute(sa.text(
            "SELECT i.relname, t.relname, obj_description(i.oid, 'pg_class'), i.reloptions, "
            "  (SELECT array_agg(a.attname::text) FROM pg_depend d "
            "   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.oid AND d.refobjsubid > 0) "
            "FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE i.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
            "  AND x.indisvalid AND obj_description(i.oid, 'pg_class') LIKE :prefix"
        ), {"prefix": _PG_COMMENT + ":%"}).all()
        return {index: (table, comment, list(reads or ()), list(options or ())) for index, table, comment, options, reads in rows}


# -- the search condition -----------------------------------------------------------------------
def _fts_phrase(word: str) -> str:
    """`word` as an FTS5 string: every character literal (", *, ^, NEAR, OR and so on)."""
    return '"' + word.replace('"', '""') + '"'


class SearchCondition(ColumnElement[bool]):
    """Rows of `table` whose `columns` hold every word; rendered per dialect (see the module doc).

    Values are bound parameters, so searches of the same shape share one compiled statement.
    """

    __visit_name__ = "crm_search_condition"
    # Cached on these attributes (ColumnElement's own cache key would ignore them).
    _traverse_internals = [
        ("table", InternalTraversal.dp_clauseelement),
        ("columns", InternalTraversal.dp_string_list),
        ("shape", InternalTraversal.dp_string),
        ("words", InternalTraversal.dp_clauseelement_list),
        ("fts_query", InternalTraversal.dp_clauseelement_list),
        ("bounds", InternalTraversal.dp_clauseelement_list),
    ]
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a condition, not a boolean column: no "= 1" on SQLite

    def __init__(self, table: sa.Table, columns: Sequence[str], words: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.shape = "".join("s" if len(w) < TRIGRAM else "l" for w in words)
        # PostgreSQL: the words as typed (lowercased in SQL, like the index).
        self.words = tuple(sa.bindparam("search_word", w, type_=sa.UnicodeText, unique=True) for w in words)
        # SQLite: one FTS5 query for the long words (limited to the searched columns) ...
        long_words = [w for w in words if len(w) >= TRIGRAM]
        colset = "{" + " ".join(fts_column(c) for c in columns) + "}"
        phrases = f"{colset} : ({' '.join(_fts_phrase(w) for w in long_words)})"
        self.fts_query = (sa.bindparam("search_match", phrases, type_=sa.UnicodeText, unique=True),) if long_words else ()
        # ... and a range of trigrams for each short one (folded like FTS5 folds case).
        bounds: list[sa.BindParameter[Any]] = []
        for w in words:
            if len(w) < TRIGRAM:
                bounds.append(sa.bindparam("search_lo", w.lower(), type_=sa.UnicodeText, unique=True))
                bounds.append(sa.bindparam("search_hi", w.lower() + _MAX_CHAR, type_=sa.UnicodeText, unique=True))
        self.bounds = tuple(bounds)


@compiles(SearchCondition, "sqlite")
def _compile_sqlite(element: SearchCondition, compiler: SQLCompiler, **kw: Any) -> str:
    table = element.table
    parts: list[sa.ColumnElement[bool]] = []
    if element.fts_query:
        fts_name = fts_table_name(table.name)
        fts = sa.table(sa.sql.quoted_name(fts_name, quote=True), sa.column("rowid"))
        matches = sa.literal_column(_quote(compiler.dialect, fts_name)).op("MATCH")(element.fts_query[0])
        parts.append(table.c.id.in_(sa.select(fts.c.rowid).where(matches)))
    terms = sa.table(sa.sql.quoted_name(fts_terms_name(table.name), quote=True), sa.column("doc"), sa.column("term"), sa.column("col"))
    in_columns: sa.ColumnElement[Any] = sa.literal_column(", ".join(f"'{fts_column(c)}'" for c in element.columns))  # validated names
    for lo, hi in zip(element.bounds[::2], element.bounds[1::2], strict=True):
        found = sa.select(terms.c.doc).where(terms.c.term >= lo, terms.c.term <= hi, terms.c.col.op("IN")(sa.Grouping(in_columns)))
        parts.append(table.c.id.in_(found))
    return compiler.process(sa.and_(*parts), **kw)


@compiles(SearchCondition, "postgresql")
def _compile_postgresql(element: SearchCondition, compiler: SQLCompiler, **kw: Any) -> str:
    table = _quote(compiler.dialect, element.table.name)
    values = [f"{table}.{_quote(compiler.dialect, column)}::text" for column in element.columns]
    words = []
    for kind, word in zip(element.shape, element.words, strict=True):
        param = compiler.process(word, **kw)
        # The index condition stands alone, so the bitmap scan answers it and only strpos is
        # evaluated per row (a Filter repeating the grams function would compute it per row).
        words.append("(" + " OR ".join(f"{_PG_GRAMS}({v}) @> {_PG_QUERY_GRAMS}({param})" for v in values) + ")")
        if kind == "l":  # every trigram of the word is there; check they are in this order
            words.append("(" + " OR ".join(f"strpos(lower({v}), lower({param})) > 0" for v in values) + ")")
    return "(" + " AND ".join(words) + ")"


@compiles(SearchCondition)
def _compile_other(element: SearchCondition, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"search is implemented for SQLite and PostgreSQL, not {compiler.dialect.name}")


def search_condition(entity: Entity, table: sa.Table, text: str, hidden: Iterable[str] = ()) -> sa.ColumnElement[bool]:
    """The WHERE condition of a search for `text` on `entity`, leaving out the `hidden` fields."""
    columns = search_columns(entity, table, hidden)
    if not columns:
        return sa.false()
    words = text.replace("\x00", " ").split()  # NUL cannot be stored in PostgreSQL text: a separator
    if not words:
        return sa.true()
    return SearchCondition(table, columns, words)
