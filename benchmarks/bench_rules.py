"""Benchmark of the rules language: compiled rules against the same rules hand-written in
Python (target: within 3x), against simpleeval where it is installed, and the time to parse
and check 1,000 rules. Prints medians and p95; asserts nothing.

Run: .venv/bin/python benchmarks/bench_rules.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import statistics
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import TESTKIT, Measurement, p95, timed  # noqa: E402
from crm_platform.metadata.loader import load_registry  # noqa: E402
from crm_platform.metadata.model import Registry  # noqa: E402
from crm_platform.rules import EvalContext, check_rule_file, compile_expression  # noqa: E402

TODAY = dt.date(2026, 3, 15)
D = Decimal

# (rule, entity, hand-written equivalent with the same null semantics)
RULES: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
    (
        'stage = "won" and isblank(amount)',
        "deal",
        lambda r: r.get("stage") == "won" and r.get("amount") is None,
    ),
    (
        'stage = "open" and close_date < today()',
        "deal",
        lambda r: (
            r.get("stage") == "open" and r.get("close_date") is not None and r["close_date"] < TODAY
        ),
    ),
    (
        "discount > 40% and isblank(notes)",
        "company",
        lambda r: (
            r.get("discount") is not None
            and r["discount"] / 100 > D("0.4")
            and r.get("notes") is None
        ),
    ),
    (
        'kind in ["dealer", "customer"] and employees >= 10',
        "company",
        lambda r: (
            r.get("kind") in ("dealer", "customer")
            and r.get("employees") is not None
            and r["employees"] >= 10
        ),
    ),
    (
        "revenue * (1 - discount)",
        "company",
        lambda r: (
            None
            if r.get("revenue") is None or r.get("discount") is None
            else r["revenue"] * (1 - r["discount"] / 100)
        ),
    ),
    (
        'case(kind, "dealer", 1.5, "customer", 1, 0)',
        "company",
        lambda r: KIND_SCORE.get(r.get("kind"), 0),
    ),
    (
        'not isblank(phone) and not matches(phone, "[0-9]{3}-[0-9]{4}")',
        "company",
        lambda r: r.get("phone") is not None and PHONE.fullmatch(r["phone"]) is None,
    ),
    (
        "days_between(founded, today()) > 365",
        "company",
        lambda r: r.get("founded") is not None and (TODAY - r["founded"]).days > 365,
    ),
]

import re  # noqa: E402

PHONE: re.Pattern[str] = re.compile("[0-9]{3}-[0-9]{4}")
KIND_SCORE: dict[str | None, Any] = {"dealer": D("1.5"), "customer": 1}
RECORDS: dict[str, list[dict[str, Any]]] = {
    "deal": [
        {"stage": s, "amount": a, "close_date": c}
        for s in ("won", "open", None)
        for a in (D("10.00"), None)
        for c in (TODAY, dt.date(2020, 1, 1))
    ],
    "company": [
        {
            "discount": d,
            "notes": n,
            "kind": k,
            "employees": e,
            "revenue": D("1000.00"),
            "phone": p,
            "founded": dt.date(2020, 1, 1),
        }
        for d in (D("50"), D("10"), None)
        for n in ("x", None)
        for k in ("dealer", "other")
        for e in (5, 20)
        for p in ("555-1234", "5551234")
    ],
}


def run_all(fn: Callable[[Any], Any], items: list[Any]) -> None:
    for item in items:
        fn(item)


def compiled_rules(registry: Registry) -> list[tuple[str, Callable[[Any], Any], list[Any], Callable[[Any], Any], list[Any]]]:
    """Each rule compiled, checked to give the hand-written results: (text, compiled, contexts, hand, records)."""
    cases = []
    for text, entity, hand in RULES:
        compiled = compile_expression(text, registry, entity, "formula")
        records = RECORDS[entity]
        contexts = [EvalContext(r, today=lambda: TODAY) for r in records]
        for record, context in zip(records, contexts, strict=True):  # same results
            assert compiled.evaluate(context) == hand(record), (text, record)
        cases.append((text, compiled.function, contexts, hand, records))
    return cases


def rules_evaluation(registry: Registry, rounds: int) -> Measurement:
    """One run: every rule of RULES over each of its records, compiled against hand-written."""
    cases = compiled_rules(registry)
    evaluations = sum(len(records) for *_, records in cases)

    def compiled() -> None:
        for _, function, contexts, _, _ in cases:
            run_all(function, contexts)

    def hand_written() -> None:
        for _, _, _, hand, records in cases:
            run_all(hand, records)

    return Measurement("rules evaluation (compiled)", timed(compiled, rounds), timed(hand_written, rounds),
                       "hand-written Python", f"{len(cases)} rules, {evaluations} evaluations a run")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    registry = load_registry(*TESTKIT)
    print(f"{'rule':62} {'compiled us':>11} {'hand us':>8} {'ratio':>6}")
    ratios = []
    for text, function, contexts, hand, records in compiled_rules(registry):
        rule_samples = timed(functools.partial(run_all, function, contexts), args.rounds)
        hand_samples = timed(functools.partial(run_all, hand, records), args.rounds)
        per_rule = statistics.median(rule_samples) / len(records) * 1e3
        per_hand = statistics.median(hand_samples) / len(records) * 1e3
        ratios.append(per_rule / per_hand)
        print(f"{text[:62]:62} {per_rule:11.2f} {per_hand:8.2f} {per_rule / per_hand:6.2f}")
    whole = rules_evaluation(registry, args.rounds)
    print(f"all rules, one run: {whole.line()}")
    median, worst = statistics.median(ratios), max(ratios)
    print(f"median ratio compiled/hand-written: {median:.2f}x (max {worst:.2f}x)")
    try:
        import simpleeval  # type: ignore[import-not-found]
    except ImportError:
        print("simpleeval: not installed (skipped)")
    else:
        evaluator = simpleeval.SimpleEval()
        records = RECORDS["deal"]

        def simple() -> None:
            for record in records:
                evaluator.names = record
                evaluator.eval('stage == "won" and amount is None')

        compiled = compile_expression(RULES[0][0], registry, "deal", "condition").function
        contexts = [EvalContext(r) for r in records]
        s = statistics.median(timed(simple, args.rounds))
        c = statistics.median(timed(lambda: [compiled(x) for x in contexts], args.rounds))
        print(f"simpleeval (re-evaluating the text each time): {s / c:.1f}x slower than compiled")
    lines = [
        f'validate deal "rule {i}" on amount when stage = "won" and amount < {i} and '
        f"close_date < add_days(today(), {i})"
        for i in range(1000)
    ]
    text = "\n".join(lines)
    samples = timed(lambda: check_rule_file(text, registry, "bench.rules"), max(3, args.rounds // 6), warmup=0)
    print(
        f"parse + check + compile 1,000 rules: median {statistics.median(samples):.0f} ms, "
        f"p95 {p95(samples):.0f} ms ({statistics.median(samples) / 1000:.3f} ms per rule)"
    )


if __name__ == "__main__":
    main()
