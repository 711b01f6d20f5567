"""The duplicate check of an import: does a row that would create a record look like a record
the user may read, or like an earlier row of the same file? (the pack's duplicate rules,
engine/duplicates.py)

    check = RowDuplicates(site, actor, entity)
    matches = check.find(conn, values, row_number)   # best first; [] when the entity has no rule
    check.remember(row_number, values)               # a row that creates a record
    check.created(row_number, record_id)             # ... once it is written

Existing records are found with DuplicateFinder in the import's transaction (the search index,
the user's read scope); records this import created are reported as the rows they came from.
Earlier rows are compared in memory by the same measures: a name's trigrams pick the candidate
rows, whose similarity is then computed; phones by their last digits, emails ignoring case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.duplicates import (
    MAX_MATCHES,
    DuplicateFinder,
    Match,
    Reason,
    email_key,
    name_words,
    phone_digits,
    query_grams,
    similarity,
)
from crm_platform.engine.records.actor import Actor
from crm_platform.metadata.model import Entity

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

NAME_CANDIDATES = 20  # earlier rows sharing the most trigrams with a name, compared by similarity


@dataclass
class RowMatch:
    """A possible duplicate of a row: an existing record, or an earlier row of the file
    (`row`; `id` once that row's record is written)."""

    entity: str
    id: int | None
    title: str
    row: int | None = None
    reasons: list[Reason] = field(default_factory=list)

    @property
    def score(self) -> float:
        return max((r.score for r in self.reasons), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "id": self.id, "title": self.title, "row": self.row, "score": round(self.score, 3),
                "url": f"/app/{self.entity}/{self.id}" if self.id is not None else None, "reasons": [r.as_dict() for r in self.reasons]}


@dataclass
class _Row:
    number: int
    values: Mapping[str, Any]
    title: str
    record_id: int | None = None


class RowDuplicates:
    def __init__(self, site: Site, actor: Actor, entity: Entity) -> None:
        self.finder = DuplicateFinder(site)
        self.actor = actor
        self.entity = entity
        self.rule = self.finder.rule(entity.name)
        self.suffixes = self.finder.rules.company_suffixes
        self.rows: dict[int, _Row] = {}
        self.by_record: dict[int, int] = {}  # record id -> the row that created it
        self.grams: dict[str, list[int]] = {}  # name trigram -> rows
        self.phones: dict[str, list[int]] = {}  # last digits -> rows
        self.emails: dict[str, list[int]] = {}

    @property
    def active(self) -> bool:
        return self.rule is not None

    # -- what a row looks like ---------------------------------------------------------------
    def _names(self, values: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
        """(field, words) of each name field with a name."""
        if self.rule is None or self.rule.name is None:
            return []
        found = []
        for name in self.rule.name.fields:
            words = name_words(values.get(name), self.suffixes) if isinstance(values.get(name), str) else []
            if "".join(words):
                found.append((name, words))
        return found

    def _phones(self, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        if self.rule is None or self.rule.phone is None:
            return []
        digits = self.rule.phone.digits
        return [(name, phone_digits(values.get(name))[-digits:]) for name in self.rule.phone.fields
                if len(phone_digits(values.get(name))) >= digits]

    def _emails(self, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        if self.rule is None or self.rule.email is None:
            return []
        return [(name, email_key(values.get(name))) for name in self.rule.email.fields if email_key(values.get(name))]

    def title_of(self, values: Mapping[str, Any], number: int) -> str:
        title = values.get(self.entity.title_field) if self.entity.title_field else None
        return str(title) if title not in (None, "") else f"row {number}"

    # -- finding -------------------------------------------------------------------------------
    def find(self, conn: sa.Connection, values: Mapping[str, Any], number: int) -> list[RowMatch]:
        """Records and earlier rows that `values` (a row as it would be stored) looks like, best first."""
        if self.rule is None:
            return []
        found: dict[tuple[str, int], RowMatch] = {}
        for match in self.finder.find(self.actor, self.entity.name, values, conn=conn, limit=2 * MAX_MATCHES):
            row = self.by_record.get(match.id)
            key = ("row", row) if row is not None else ("id", match.id)
            found[key] = RowMatch(match.entity, match.id, match.title, row, list(match.reasons))
        for row, reasons in self._earlier_rows(values).items():
            earlier = self.rows[row]
            known = found.setdefault(("row", row), RowMatch(self.entity.name, earlier.record_id, earlier.title, row))
            for reason in reasons:
                _add(known, reason)
        ranked = sorted(found.values(), key=lambda m: (-m.score, -len(m.reasons), m.row or 0))
        return ranked[:MAX_MATCHES]

    def _earlier_rows(self, values: Mapping[str, Any]) -> dict[int, list[Reason]]:
        rule = self.rule
        assert rule is not None
        hits: dict[int, list[Reason]] = {}
        if rule.name is not None:
            same = {name: values.get(name) for name in rule.name.same}
            for _field, words in self._names(values):
                joined = "".join(words)
                counts: dict[int, int] = {}
                for gram in query_grams(words):
                    for row in self.grams.get(gram, ()):
                        counts[row] = counts.get(row, 0) + 1
                for row in sorted(counts, key=lambda r: (-counts[r], -r))[:NAME_CANDIDATES]:
                    earlier = self.rows[row]
                    if any(value is None or earlier.values.get(other) != value for other, value in same.items()):
                        continue  # "same account" holds only with an equal account
                    for their_field, their_words in self._names(earlier.values):
                        score = similarity(joined, "".join(their_words))
                        if score >= rule.name.threshold:
                            hits.setdefault(row, []).append(Reason("name", their_field, earlier.values.get(their_field), score))
        for index, (keys, kind) in enumerate(((self._phones(values), "phone"), (self._emails(values), "email"))):
            bucket = self.phones if index == 0 else self.emails
            for _name, key in keys:
                for row in bucket.get(key, ()):
                    earlier = self.rows[row]
                    their = self._phones(earlier.values) if kind == "phone" else self._emails(earlier.values)
                    for their_field, their_key in their:
                        if their_key == key:
                            hits.setdefault(row, []).append(Reason(kind, their_field, earlier.values.get(their_field), 1.0))
        return hits

    # -- the rows seen so far ------------------------------------------------------------------------
    def remember(self, number: int, values: Mapping[str, Any]) -> None:
        """A row that creates a record: later rows are compared with it."""
        if self.rule is None:
            return
        self.rows[number] = _Row(number, dict(values), self.title_of(values, number))
        for _name, words in self._names(values):
            for gram in query_grams(words):
                self.grams.setdefault(gram, []).append(number)
        for _name, key in self._phones(values):
            self.phones.setdefault(key, []).append(number)
        for _name, key in self._emails(values):
            self.emails.setdefault(key, []).append(number)

    def created(self, number: int, record_id: int) -> None:
        self.by_record[record_id] = number
        if number in self.rows:
            self.rows[number].record_id = record_id

    def record_of(self, number: int) -> int | None:
        row = self.rows.get(number)
        return row.record_id if row is not None else None


def _add(match: RowMatch, reason: Reason) -> None:
    helper = Match(match.entity, match.id or 0, match.title, match.reasons)
    helper.add(reason)
    match.reasons = helper.reasons
