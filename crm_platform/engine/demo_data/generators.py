"""The field generators a profile names (pick, range, days, between, pattern, chance, value,
expr, related, random, ancestor), as closures `produce(rng, row) -> stored value`.

Values come out as the record service stores them: Decimal quantized to the field's scale,
dates, aware UTC datetimes truncated to the second, ids for references, lists for
multi-picklists and N:N links. Every draw comes from the `rng` passed in, so a seed repeats.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from crm_platform.engine.demo_data.model import Produce
from crm_platform.rules import CompiledExpression

if TYPE_CHECKING:
    from crm_platform.engine.demo_data.rows import Row

DAY_SECONDS = 86400


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def pick(values: Sequence[Any], weights: Sequence[float] | None) -> Produce:
    items = list(values)
    if weights is None:
        n = len(items)
        return lambda rng, row: items[int(rng.random() * n)]
    cumulative = _cumulative(weights)
    total = cumulative[-1]
    return lambda rng, row: items[bisect.bisect_right(cumulative, rng.random() * total)]


def pick_many(values: Sequence[Any], weights: Sequence[float] | None, draw_count: Callable[[random.Random], int], order: Sequence[Any]) -> Produce:
    """Distinct values (a multi-picklist), in the field's option order."""
    one = pick(values, weights)
    rank = {v: i for i, v in enumerate(order)}

    def produce(rng: random.Random, row: Row) -> list[Any] | None:
        wanted = min(draw_count(rng), len(values))
        chosen: set[Any] = set()
        for _ in range(wanted * 4):
            if len(chosen) >= wanted:
                break
            chosen.add(one(rng, row))
        return sorted(chosen, key=lambda v: rank.get(v, 0)) or None

    return produce


def number(kind: str, scale: int, low: float, high: float, step: float | None, of: CompiledExpression | None,
           bounds: tuple[Decimal | None, Decimal | None]) -> Produce:
    """A number in [low, high]; with `of`, that share of the expression's value."""
    quantum = Decimal(1).scaleb(-scale) if kind != "integer" else Decimal(1)
    step_d = Decimal(str(step)) if step else None
    minimum, maximum = bounds

    def finish(value: Decimal) -> Any:
        if step_d is not None:
            value = (value / step_d).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step_d
        value = value.quantize(quantum, rounding=ROUND_HALF_UP)
        if minimum is not None and value < minimum:
            value = minimum
        if maximum is not None and value > maximum:
            value = maximum
        return int(value) if kind == "integer" else value.quantize(quantum)

    if of is not None:
        def share(rng: random.Random, row: Row) -> Any:
            base = row.eval(of)
            if base is None:
                return None
            fraction = Decimal(round((low + rng.random() * (high - low)) * 1_000_000)) / 1_000_000
            return finish(Decimal(base) * fraction)
        return share

    if step_d is not None:
        first, last = math.ceil(Decimal(str(low)) / step_d), math.floor(Decimal(str(high)) / step_d)
        span = last - first + 1
        return lambda rng, row: finish(step_d * (first + int(rng.random() * span)))
    factor = 10 ** (scale if kind != "integer" else 0)
    first, last = math.ceil(low * factor), math.floor(high * factor)
    span = last - first + 1
    exponent = -scale if kind != "integer" else 0
    if kind == "integer":
        return lambda rng, row: first + int(rng.random() * span)
    return lambda rng, row: Decimal(first + int(rng.random() * span)).scaleb(exponent).quantize(quantum)


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _as_kind(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "date":
        return value.date() if isinstance(value, dt.datetime) else value
    return _as_datetime(value)


def _clamp(kind: str, value: Any, until: CompiledExpression | None, row: Row) -> Any:
    if until is None or value is None:
        return value
    limit = _as_kind(kind, row.eval(until))
    return limit if limit is not None and value > limit else value


def days(kind: str, low: float, high: float, start: CompiledExpression | None, until: CompiledExpression | None) -> Produce:
    """A date (whole days) or date and time (to the second) `low`..`high` days after `start`."""
    if kind == "date":
        first, last = math.ceil(low), math.floor(high)
        span = last - first + 1

        def produce_date(rng: random.Random, row: Row) -> dt.date | None:
            base = _as_kind("date", row.eval(start)) if start is not None else row.scope.today
            if base is None:
                return None
            return _clamp(kind, base + dt.timedelta(days=first + int(rng.random() * span)), until, row)
        return produce_date

    low_s, high_s = int(low * DAY_SECONDS), int(high * DAY_SECONDS)

    def produce_datetime(rng: random.Random, row: Row) -> dt.datetime | None:
        base = _as_kind("datetime", row.eval(start)) if start is not None else row.scope.now
        if base is None:
            return None
        seconds = low_s + int(rng.random() * (high_s - low_s + 1))
        return _clamp(kind, (base + dt.timedelta(seconds=seconds)).replace(microsecond=0), until, row)
    return produce_datetime


def between(kind: str, start: CompiledExpression, end: CompiledExpression, until: CompiledExpression | None = None) -> Produce:
    def produce(rng: random.Random, row: Row) -> Any:
        a, b = _as_kind(kind, row.eval(start)), _as_kind(kind, row.eval(end))
        if a is None or b is None:
            value = a if b is None else b
        elif b <= a:
            value = a
        elif kind == "date":
            value = a + dt.timedelta(days=int(rng.random() * ((b - a).days + 1)))
        else:
            seconds = int((b - a).total_seconds())
            value = (a + dt.timedelta(seconds=int(rng.random() * (seconds + 1)))).replace(microsecond=0)
        return _clamp(kind, value.replace(microsecond=0) if isinstance(value, dt.datetime) else value, until, row)
    return produce


def pattern(parts: Sequence[str | tuple[str, Any]], max_length: int | None) -> Produce:
    """Text from literal parts, ("words", list) and ("digits", n)."""
    compiled = [_piece(part) for part in parts]

    def produce(rng: random.Random, row: Row) -> str | None:
        text = "".join(piece(rng) for piece in compiled)
        return (text[:max_length] if max_length else text) or None
    return produce


def _piece(part: str | tuple[str, Any]) -> Callable[[random.Random], str]:
    if isinstance(part, str):
        return lambda rng: part
    if part[0] == "words":
        words: Sequence[str] = part[1]
        count = len(words)
        return lambda rng: words[int(rng.random() * count)]
    width: int = part[1]
    return lambda rng: str(int(rng.random() * 10**width)).zfill(width)


def chance(probability: float) -> Produce:
    return lambda rng, row: rng.random() < probability


def constant(value: Any) -> Produce:
    return lambda rng, row: value


def expression(compiled: CompiledExpression, store: Callable[[Any], Any]) -> Produce:
    return lambda rng, row: store(row.eval(compiled))


def related(entity: str, draw_count: Callable[[random.Random], int] | None) -> Produce:
    """A random row of `entity` generated under the same root row (N:N: several, distinct)."""
    def produce(rng: random.Random, row: Row) -> Any:
        rows = row.scope.related(entity, row)
        if not rows:
            return None
        if draw_count is None:
            return rows[int(rng.random() * len(rows))].id
        wanted = min(draw_count(rng), len(rows))
        return sorted(r.id for r in rng.sample(rows, wanted)) or None
    return produce


def random_row(entity: str, draw_count: Callable[[random.Random], int] | None) -> Produce:
    """A random existing or already generated row of `entity` (N:N: several, distinct)."""
    def produce(rng: random.Random, row: Row) -> Any:
        pool = row.scope.pool(entity)
        if not pool:
            return None
        if draw_count is None:
            return pool.draw(rng)
        wanted = min(draw_count(rng), len(pool))
        chosen: set[int] = set()
        for _ in range(wanted * 4):
            if len(chosen) >= wanted:
                break
            chosen.add(pool.draw(rng))
        return sorted(chosen) or None
    return produce


def ancestor(entity: str) -> Produce:
    def produce(rng: random.Random, row: Row) -> int | None:
        found = row.ancestor(entity)
        return found.id if found is not None else None
    return produce
