"""What every benchmark measures with: timing a call, median / p95, a comparison against the
baseline timed in the same run, and opening a fresh site of a pack on a database URL.

    samples = timed(fn, repeat=40)                   # milliseconds, after one warm-up call
    result = Measurement("list page", samples, timed(bare, 40), "bare SQL count + page")
    print(result.line())
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crm_platform.config import Settings
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry

REPO = Path(__file__).resolve().parent.parent
TESTKIT = (["testkit"], [REPO / "tests" / "fixtures" / "packs"])
STANDARD = (["crm_standard"], [REPO / "packs"])


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Run `fn` `warmup` times untimed, then `repeat` times: each run's wall time in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    """The 95th percentile (the single value for one sample)."""
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


@dataclass(frozen=True)
class Measurement:
    """One operation against its baseline, both in milliseconds per run; `note` says what one
    run is when it is not obvious (e.g. 'a file of 500 rows')."""

    name: str
    samples: list[float]
    baseline: list[float]
    baseline_name: str
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p95(self) -> float:
        return p95(self.samples)

    @property
    def baseline_median(self) -> float:
        return median(self.baseline)

    @property
    def ratio(self) -> float:
        return self.median / self.baseline_median

    def line(self, width: int = 44) -> str:
        return (f"{self.name:{width}} median {self.median:9.3f} ms  p95 {self.p95:9.3f} ms   "
                f"{self.baseline_name} median {self.baseline_median:9.3f} ms  p95 {p95(self.baseline):9.3f} ms   "
                f"ratio {self.ratio:5.2f}x" + (f"   ({self.note})" if self.note else ""))


def open_site(url: str, packs: tuple[list[str], list[Path]] = TESTKIT, var_dir: Path | None = None) -> Site:
    """A site of `packs` (TESTKIT or STANDARD) on `url`, its schema synced."""
    names, search = packs
    registry = load_registry(names, search)
    settings = Settings(url, tuple(names), var_dir or Path(tempfile.mkdtemp(prefix="bench_var_")), "bench")
    site = Site.open(settings, registry)
    site.sync(applied_by="bench")
    return site
