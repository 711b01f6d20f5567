"""Damaged packs never crash the loader: each gives a PackError whose problems all have a place.

Each case copies the `testkit` fixture pack and damages it at random (seeded, so a failure is
reproducible): lines deleted, duplicated, or a word replaced by another pack word.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry

REPO = Path(__file__).resolve().parents[2]
TESTKIT = REPO / "tests" / "fixtures" / "packs" / "testkit"
WORDS = [
    "", "x", "1", "-1", "true", "null", "[]", "{}", "[a, b]", "{a: 1}", "'{seq:4}'", "1.5", "2024-01-01", ":", "-",
    "company", "deal", "tag", "deal_line", "text", "picklist", "reference", "child_table", "many_to_many",
    "auto_number", "formula", "entity", "name", "fields", "extends", "child_of", "options", "default", "deal.company",
]
# Problems that belong to a whole file or pack, not to a place in it.
WHOLE_FILE_CODES = {"pack.code_file", "pack.unreadable", "pack.unknown_folder", "pack.not_found"}


def damage(folder: Path, rng: random.Random) -> None:
    files = sorted(folder.rglob("*.yaml"))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8").splitlines()
        i = rng.randrange(len(lines))
        roll = rng.random()
        if roll < 0.25:
            del lines[i]
        elif roll < 0.5:
            lines.insert(i, lines[rng.randrange(len(lines))])
        else:
            words = lines[i].replace(",", " ,").replace("}", " }").replace("]", " ]").split(" ")
            j = rng.randrange(len(words))
            words[j] = rng.choice(WORDS) if roll < 0.85 else words[j][::-1]
            lines[i] = " ".join(words).replace(" ,", ",").replace(" }", "}").replace(" ]", "]")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("seed", range(30))
def test_a_damaged_pack_gives_placed_problems_never_a_crash(tmp_path: Path, seed: int) -> None:
    shutil.copytree(TESTKIT, tmp_path / "testkit")
    damage(tmp_path / "testkit", random.Random(seed))
    try:
        load_registry(["testkit"], [tmp_path])
    except PackError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file and problem.message
            if problem.code not in WHOLE_FILE_CODES and problem.code != "pack.dependency_cycle":
                assert problem.line is not None and problem.column is not None, str(problem)
