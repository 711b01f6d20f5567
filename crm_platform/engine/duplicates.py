"""Possible duplicates: records that look like the same customer, by the pack's duplicate rules
(metadata/duplicate_rules.py, a pack's `duplicates.yaml`).

What counts as a match (any one is enough):
  name   the names, normalized, are at least `threshold` similar. Normalizing: Unicode NFKC,
         lowercase, punctuation and spaces removed, company suffixes stripped from the end
         (有限公司, 股份有限公司, Co., Ltd., Inc. ...: DEFAULT_COMPANY_SUFFIXES and the packs'
         `company_suffixes`). Similarity: the larger of difflib's ratio and the bigram Dice
         coefficient, so '佛山市华夏陶瓷有限公司' ~ '佛山华夏陶瓷' (0.92) and word order
         matters less ('华夏陶瓷（佛山）' ~ '佛山华夏陶瓷').
         With `same: [account]` a similar name counts only when those fields are equal too.
  phone  the digits (everything else dropped) agree on the last `digits` (default 8) digits.
  email  equal, ignoring case and surrounding spaces.

How candidates are found, never by reading the whole table:
  name   the trigrams of the normalized name's words are looked up in the entity's search
         index (engine/search_index.py: FTS5 on SQLite, the GIN gram index on PostgreSQL), one
         indexed condition per trigram in a UNION ALL; the records holding the most trigrams
         (at most NAME_CANDIDATES) are read and their similarity computed here.
  phone  the last four digits are looked up in the search index (restricted to the phone
         fields), and the digits of those rows are compared in SQL.
  email  the address is looked up in the search index (restricted to the email fields) and
         compared with lower() in SQL.
Every query also carries the user's read scope (`site.access.row_filter`) and leaves out
deleted records and fields hidden from the user: a user is never told about a record they may
not read.

When: `RecordService.create(..., check_duplicates=True)` calls `duplicate_check` (one hook):
after the new record is inserted and validated, in the same transaction, the check runs on the
stored values; a match raises PossibleDuplicate (409, code `possible_duplicate`, with the
matches) and rolls the insert back. Which creates are checked:
  - `"ignore_duplicates": true` in the payload: never; `"ignore_duplicates": false`: always;
  - otherwise those asking with `check_duplicates=True`, by a user: the API's
    POST /api/v1/records/<entity> and the form's POST /app/<entity>/new (not its "save anyway").
    Other callers of the service (the platform itself, workflow actions, seeds) create without it.
Imports check their rows themselves (engine/imports_duplicates.py, with this module's finder),
before writing, and let the user choose what happens to a row that looks like another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, Conflict, FieldError, RecordError
from crm_platform.engine.search_index import TRIGRAM, search_columns, search_condition
from crm_platform.metadata.duplicate_rules import DuplicateRule, DuplicateRules
from crm_platform.metadata.model import Entity
from crm_platform.metadata.values import parse_value

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

IGNORE_KEY = "ignore_duplicates"
MAX_MATCHES = 10
NAME_CANDIDATES = 50  # records holding the most trigrams of a name, read to compute their similarity
PHONE_CANDIDATES = 200
MAX_GRAMS = 24  # trigrams of a long name looked up (spread over the name)
DUPLICATE_FIELD = "_duplicate"  # the `field` of PossibleDuplicate's details (not a field of the entity)

DEFAULT_COMPANY_SUFFIXES = (
    "股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "分公司", "总公司", "公司", "集团", "厂",
    "co ltd", "company limited", "limited", "ltd", "co", "company", "corp", "corporation", "inc", "incorporated",
    "llc", "plc", "gmbh", "pte", "pty", "group", "holdings",
)

_NOT_WORD = re.compile(r"[\W_]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")


# -- normalizing and comparing ------------------------------------------------------------------
def _prepared(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def _suffix_list(extra: Iterable[str] = ()) -> tuple[str, ...]:
    found = {_prepared(s) for s in (*DEFAULT_COMPANY_SUFFIXES, *extra)} - {""}
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def name_words(text: str | None, suffixes: Iterable[str] = ()) -> list[str]:
    """The words of a name as compared: lowercase, no punctuation, company suffixes stripped."""
    if not text:
        return []
    value = _prepared(str(text))
    ordered = _suffix_list(suffixes)
    stripped = True
    while stripped:
        stripped = False
        for suffix in ordered:
            if not value.endswith(suffix) or len(value) <= len(suffix):
                continue
            head = value[: -len(suffix)]
            if suffix[0].isascii() and suffix[0].isalnum() and not head.endswith(" "):
                continue  # a Latin suffix is a whole word: 'tianco' does not end in 'co'
            value = head.rstrip()
            stripped = True
            break
    return value.split()


def normalize_name(text: str | None, suffixes: Iterable[str] = ()) -> str:
    return "".join(name_words(text, suffixes))


def _bigrams(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(len(text) - 1)]


def similarity(a: str, b: str) -> float:
    """How alike two normalized names are, 0 to 1: the larger of difflib's ratio and the bigram Dice coefficient."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
    left, right = _bigrams(a), _bigrams(b)
    dice = 0.0
    if left and right:
        pool = list(right)
        common = 0
        for gram in left:
            if gram in pool:
                pool.remove(gram)
                common += 1
        dice = 2 * common / (len(left) + len(right))
    return max(ratio, dice)


def name_similarity(a: str | None, b: str | None, suffixes: Iterable[str] = ()) -> float:
    return similarity(normalize_name(a, suffixes), normalize_name(b, suffixes))


def phone_digits(text: Any) -> str:
    return _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", str(text))) if text else ""


def email_key(text: Any) -> str:
    return str(text).strip().lower() if text else ""


def query_grams(words: list[str]) -> list[str]:
    """What a name is looked up by: the trigrams of its words (spread over the name when there
    are many), or its short words when it has no trigram."""
    grams: list[str] = []
    for word in words:
        for i in range(len(word) - TRIGRAM + 1):
            gram = word[i:i + TRIGRAM]
            if gram not in grams:
                grams.append(gram)
    if not grams:
        return [w for w in dict.fromkeys(words) if w]
    if len(grams) > MAX_GRAMS:
        step = len(grams) / MAX_GRAMS
        grams = [grams[int(i * step)] for i in range(MAX_GRAMS)]
    return grams


# -- matches ------------------------------------------------------------------------------------
@dataclass
class Reason:
    kind: str  # name | phone | email
    field: str  # the existing record's field that matched
    value: Any  # its value
    score: float  # 1.0 for phone and email

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "value": self.value, "score": round(self.score, 3)}


@dataclass
class Match:
    entity: str
    id: int
    title: str
    reasons: list[Reason] = field(default_factory=list)

    @property
    def score(self) -> float:
        return max((r.score for r in self.reasons), default=0.0)

    @property
    def url(self) -> str:
        return f"/app/{self.entity}/{self.id}"

    def add(self, reason: Reason) -> None:
        for i, known in enumerate(self.reasons):
            if known.kind == reason.kind and known.field == reason.field:
                if reason.score > known.score:
                    self.reasons[i] = reason
                return
        self.reasons.append(reason)

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "id": self.id, "title": self.title, "score": round(self.score, 3), "url": self.url,
                "reasons": [r.as_dict() for r in self.reasons]}


class PossibleDuplicate(Conflict):
    """409: the new record looks like records that exist; nothing was saved."""

    code = "possible_duplicate"

    def __init__(self, entity: Entity, matches: list[Match]) -> None:
        names = "; ".join(f"{m.title} (#{m.id})" for m in matches[:3]) + (" ..." if len(matches) > 3 else "")
        message = (f"this {entity.label.en} looks like {len(matches)} existing record(s): {names}; "
                   f"send \"{IGNORE_KEY}\": true to create it anyway")
        details = [FieldError(DUPLICATE_FIELD, f"{', '.join(r.kind for r in m.reasons)} like {entity.name} {m.id} {m.title}", "possible_duplicate",
                              {"current": m.as_dict()}) for m in matches]
        super().__init__(message, details)
        self.entity = entity
        self.matches = matches

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "matches": [m.as_dict() for m in self.matches]}


# -- finding ------------------------------------------------------------------------------------
def rules_of(site: Site) -> DuplicateRules:
    rules = site.registry.extra.get("duplicates")
    return rules if isinstance(rules, DuplicateRules) else DuplicateRules()


class DuplicateFinder:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.rules = rules_of(site)

    def rule(self, entity_name: str) -> DuplicateRule | None:
        return self.rules.of(entity_name)

    def find(self, actor: Actor, entity_name: str, values: Mapping[str, Any], exclude_id: int | None = None,
             conn: sa.Connection | None = None, limit: int = MAX_MATCHES) -> list[Match]:
        """Records of `entity_name` the actor may read that look like `values` (stored values or
        form text), best first. Empty when the entity has no duplicate rule."""
        rule = self.rule(entity_name)
        if rule is None:
            return []
        if conn is None:
            with self.site.engine.connect() as own:
                return self.find(actor, entity_name, values, exclude_id, own, limit)
        entity = self.site.registry.entity(entity_name)
        table = self.site.schema.tables[entity.name]
        access = self.site.access
        try:
            readable = access.row_filter(actor, entity, table, "read")
        except RecordError:
            return []  # nothing of this entity is visible to the actor
        hidden = access.hidden_fields(actor, entity)
        base: list[sa.ColumnElement[bool]] = [table.c.deleted_at.is_(None), readable]
        if exclude_id is not None:
            base.append(table.c.id != exclude_id)
        found: dict[int, Match] = {}

        def match(row: Mapping[Any, Any]) -> Match:
            if row["id"] not in found:
                title = row.get(entity.title_field) if entity.title_field else None
                found[row["id"]] = Match(entity.name, row["id"], str(title) if title not in (None, "") else f"#{row['id']}")
            return found[row["id"]]

        if rule.name is not None:
            self._by_name(conn, entity, table, rule, values, hidden, base, match)
        if rule.phone is not None:
            self._by_phone(conn, entity, table, rule, values, hidden, base, match)
        if rule.email is not None:
            self._by_email(conn, entity, table, rule, values, hidden, base, match)
        ranked = sorted(found.values(), key=lambda m: (-m.score, -len(m.reasons), -m.id))
        return ranked[:limit]

    # -- one kind of match each --------------------------------------------------------------
    @staticmethod
    def _only(entity: Entity, table: sa.Table, fields: Iterable[str]) -> list[str]:
        """The search columns to leave out so that a search reads only `fields`."""
        keep = set(fields)
        return [c for c in search_columns(entity, table) if c not in keep]

    def _by_name(self, conn: sa.Connection, entity: Entity, table: sa.Table, rule: DuplicateRule, values: Mapping[str, Any],
                 hidden: set[str], base: list[sa.ColumnElement[bool]], match: Callable[[Mapping[Any, Any]], Match]) -> None:
        spec = rule.name
        assert spec is not None
        fields = [f for f in spec.fields if f not in hidden and f in table.c]
        if not fields or any(s in hidden for s in spec.same):
            return
        conditions = list(base)
        for name in spec.same:
            value = _typed(entity, name, values.get(name))
            if value is None:
                return  # "same account" cannot hold without an account
            conditions.append(table.c[name] == value)
        suffixes = self.rules.company_suffixes
        mine = [(w, "".join(w)) for w in (name_words(values.get(f), suffixes) for f in fields if isinstance(values.get(f), str))]
        mine = [(words, joined) for words, joined in mine if joined]
        if not mine:
            return
        grams: list[str] = []
        for words, _ in mine:
            grams += [g for g in query_grams(words) if g not in grams]
        skip = self._only(entity, table, fields)
        branches = [sa.select(table.c.id.label("id")).where(search_condition(entity, table, gram, skip)) for gram in grams[:MAX_GRAMS * 2]]
        hits_of = (sa.union_all(*branches) if len(branches) > 1 else branches[0]).subquery("name_grams")
        hits = sa.func.count().label("hits")
        top = (sa.select(table.c.id, hits).select_from(table.join(hits_of, hits_of.c.id == table.c.id)).where(*conditions)
               .group_by(table.c.id).order_by(hits.desc(), table.c.id.desc()).limit(NAME_CANDIDATES))
        ids = [row.id for row in conn.execute(top)]
        if not ids:
            return
        wanted = [table.c.id, *(table.c[f] for f in fields)]
        if entity.title_field and entity.title_field not in fields and entity.title_field in table.c:
            wanted.append(table.c[entity.title_field])
        for row in conn.execute(sa.select(*wanted).where(table.c.id.in_(ids))).mappings():
            for f in fields:
                theirs = normalize_name(row[f], suffixes) if isinstance(row[f], str) else ""
                score = max((similarity(joined, theirs) for _, joined in mine), default=0.0)
                if score >= spec.threshold:
                    match(row).add(Reason("name", f, row[f], score))

    def _by_phone(self, conn: sa.Connection, entity: Entity, table: sa.Table, rule: DuplicateRule, values: Mapping[str, Any],
                  hidden: set[str], base: list[sa.ColumnElement[bool]], match: Callable[[Mapping[Any, Any]], Match]) -> None:
        spec = rule.phone
        assert spec is not None
        fields = [f for f in spec.fields if f not in hidden and f in table.c]
        keys = []
        for f in fields:
            digits = phone_digits(values.get(f))
            if len(digits) >= spec.digits and digits[-spec.digits:] not in keys:
                keys.append(digits[-spec.digits:])
        if not keys:
            return
        skip = self._only(entity, table, fields)
        dialect = conn.dialect.name
        wanted = [table.c.id, *(table.c[f] for f in fields)]
        if entity.title_field and entity.title_field not in fields and entity.title_field in table.c:
            wanted.append(table.c[entity.title_field])
        for key in keys:
            same_digits = sa.or_(*(_digits_sql(table.c[f], dialect).like("%" + key) for f in fields))
            query = sa.select(*wanted).where(search_condition(entity, table, key[-4:], skip), same_digits, *base).limit(PHONE_CANDIDATES)
            for row in conn.execute(query).mappings():
                for f in fields:
                    if phone_digits(row[f])[-spec.digits:] == key and len(phone_digits(row[f])) >= spec.digits:
                        match(row).add(Reason("phone", f, row[f], 1.0))

    def _by_email(self, conn: sa.Connection, entity: Entity, table: sa.Table, rule: DuplicateRule, values: Mapping[str, Any],
                  hidden: set[str], base: list[sa.ColumnElement[bool]], match: Callable[[Mapping[Any, Any]], Match]) -> None:
        spec = rule.email
        assert spec is not None
        fields = [f for f in spec.fields if f not in hidden and f in table.c]
        addresses = list(dict.fromkeys(a for a in (email_key(values.get(f)) for f in fields) if a and not any(c.isspace() for c in a)))
        if not addresses:
            return
        skip = self._only(entity, table, fields)
        wanted = [table.c.id, *(table.c[f] for f in fields)]
        if entity.title_field and entity.title_field not in fields and entity.title_field in table.c:
            wanted.append(table.c[entity.title_field])
        for address in addresses:
            equal = sa.or_(*(sa.func.lower(sa.func.trim(table.c[f])) == address for f in fields))
            query = sa.select(*wanted).where(search_condition(entity, table, address, skip), equal, *base).limit(PHONE_CANDIDATES)
            for row in conn.execute(query).mappings():
                for f in fields:
                    if email_key(row[f]) == address:
                        match(row).add(Reason("email", f, row[f], 1.0))


def _typed(entity: Entity, name: str, raw: Any) -> Any:
    """A value as stored (a form sends text): None when blank or not valid."""
    if raw is None or raw == "":
        return None
    f = entity.field_map.get(name)
    if f is None:
        return raw
    try:
        return parse_value(f, raw)
    except (ValueError, TypeError):
        return None


_SEPARATORS = (" ", "-", "(", ")", "+", ".", "/", "\u3000", "\uff0d", "\uff08", "\uff09", "\u2014", "\u2013")


def _digits_sql(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The column's text with the usual phone separators removed (every non-digit on PostgreSQL)."""
    if dialect == "postgresql":
        return sa.func.regexp_replace(column, "[^0-9]", "", "g")
    expression: sa.ColumnElement[Any] = column
    for separator in _SEPARATORS:
        expression = sa.func.replace(expression, separator, "")
    return expression


# -- the hook in RecordService.create -----------------------------------------------------------
def duplicate_check(site: Site, actor: Actor, entity: Entity, data: Any, wanted: bool = False) -> tuple[Any, Callable[[sa.Connection, int], None]]:
    """`data` without the `ignore_duplicates` flag, and the check to run on the inserted record
    (inside the create's transaction): raises PossibleDuplicate when it looks like others.
    Checked when the flag says false, or when it is absent, `wanted` and the actor is a user."""
    flag: bool | None = None
    if isinstance(data, dict) and IGNORE_KEY in data:
        flag = data[IGNORE_KEY]
        if not isinstance(flag, bool):
            raise BadRequest(f"'{IGNORE_KEY}' must be true or false", [FieldError(IGNORE_KEY, "expected true or false", "type")])
        data = {k: v for k, v in data.items() if k != IGNORE_KEY}
    finder = DuplicateFinder(site)
    # not said: checked for people's requests that want it, never for the platform itself
    asked = (wanted and actor.user_id is not None) if flag is None else not flag
    skip = not asked or finder.rule(entity.name) is None

    def check(conn: sa.Connection, record_id: int) -> None:
        if skip:
            return
        table = site.schema.tables[entity.name]
        row = conn.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
        if row is None:
            return
        matches = finder.find(actor, entity.name, dict(row), exclude_id=record_id, conn=conn)
        if matches:
            raise PossibleDuplicate(entity, matches)

    return data, check
