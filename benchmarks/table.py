"""The one table `python -m benchmarks.run` prints: a Markdown table (pasteable into the README),
one row per operation and database, with median, p95, the baseline measured in the same run and
the ratio."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.measure import Measurement, p95

HEADER = ("operation", "database", "median", "p95", "baseline (same run)", "baseline median", "baseline p95", "ratio",
          "one run")


@dataclass(frozen=True)
class Row:
    operation: str
    database: str
    median: str
    p95: str
    baseline: str
    baseline_median: str
    baseline_p95: str
    ratio: str
    note: str

    @classmethod
    def timing(cls, result: Measurement, database: str) -> Row:
        return cls(result.name, database, ms(result.median), ms(result.p95), result.baseline_name,
                   ms(result.baseline_median), ms(p95(result.baseline)), f"{result.ratio:.2f}x", result.note)

    @classmethod
    def memory(cls, operation: str, database: str, mib: int, baseline: str, baseline_mib: int, note: str) -> Row:
        return cls(operation, database, f"{mib} MiB", "-", baseline, f"{baseline_mib} MiB", "-",
                   f"{mib / baseline_mib:.2f}x", note)

    def cells(self) -> tuple[str, ...]:
        return (self.operation, self.database, self.median, self.p95, self.baseline, self.baseline_median,
                self.baseline_p95, self.ratio, self.note)


def ms(value: float) -> str:
    """Milliseconds with the precision that matters at their size."""
    if value < 1:
        return f"{value:.3f} ms"
    if value < 100:
        return f"{value:.2f} ms"
    return f"{value:,.0f} ms"


def render(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)
