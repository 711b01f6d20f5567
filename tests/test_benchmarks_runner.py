"""`python -m benchmarks.run --quick` on SQLite with tiny sizes prints one table with a row for
every benchmark, each with numbers (timings themselves are not asserted: benchmarks assert
nothing about speed); bad options are refused with a message naming them."""

from __future__ import annotations

import os
import re

import pytest

from benchmarks import run

# The quick run uses SQLite whatever the test database is: the PostgreSQL pass would repeat it.
pytestmark = pytest.mark.skipif(os.environ.get("CRM_TEST_DATABASE_URL", "").startswith("postgresql"),
                                reason="runs on SQLite only; the SQLite pass covers it")

NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
EXPECTED = [  # (operation, database)
    ("rules evaluation (compiled)", "-"),
    ("list page kind=dealer sort=-revenue", "sqlite"),
    ("search company name, en (2 words)", "sqlite"),
    ("create via API (POST, in-process)", "sqlite"),
    ("list page scoped to unit and below", "sqlite"),
    ("report funnel (admin)", "sqlite"),
    ("report pipeline (admin)", "sqlite"),
    ("report by owner (admin)", "sqlite"),
    ("report forecast (admin)", "sqlite"),
    ("import (CSV read + write)", "sqlite"),
    ("server peak memory, both packs", "sqlite"),
]


def table_rows(lines: list[str]) -> dict[tuple[str, str], list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert header[:8] == ["operation", "database", "median", "p95", "baseline (same run)", "baseline median",
                          "baseline p95", "ratio"]
    return {(cells[0], cells[1]): cells for cells in body}


@pytest.mark.timeout(300)
def test_the_quick_run_prints_every_row_with_numbers() -> None:
    printed: list[str] = []
    status = run.main(["--quick", "--databases", "sqlite", "--rows", "300", "--import-rows", "20", "--repeat", "3"],
                      out=printed.append)
    assert status == 0
    lines = "\n".join(printed).splitlines()
    assert re.match(r"benchmarks\.run --quick, .* CPUs, load average .*SQLite 3\.", lines[0]), lines[0]
    rows = table_rows(lines)
    assert list(rows) == EXPECTED
    for (operation, _), cells in rows.items():
        unit = "MiB" if "memory" in operation else "ms"
        assert re.fullmatch(rf"{NUMBER} {unit}", cells[2]), (operation, cells)  # median
        assert re.fullmatch(rf"{NUMBER} ms", cells[3]) or unit == "MiB", (operation, cells)  # p95
        assert cells[4], (operation, "names its baseline")
        assert re.fullmatch(rf"{NUMBER} {unit}", cells[5]), (operation, cells)  # baseline median
        assert re.fullmatch(rf"{NUMBER}x", cells[7]) and float(cells[7][:-1]) > 0, (operation, cells)  # ratio
    assert rows[("list page kind=dealer sort=-revenue", "sqlite")][8] == "100 rows in total"  # a third of 300 are dealers
    assert rows[("import (CSV read + write)", "sqlite")][8] == "a file of 20 rows"


@pytest.mark.parametrize(("argv", "message"), [
    (["--databases", "oracle"], "--databases: unknown oracle"),
    (["--repeat", "1"], "--repeat must be at least 2, got 1"),
    (["--rows", "0"], "--rows must be at least 1, got 0"),
])
def test_bad_options_are_refused_naming_the_option(argv: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_asking_for_postgresql_without_a_server_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CRM_BENCH_POSTGRESQL_URL", raising=False)
    monkeypatch.delenv("CRM_TEST_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit):
        run.main(["--databases", "postgresql"])
    assert "--databases postgresql needs a server: --postgresql-url URL" in capsys.readouterr().err
