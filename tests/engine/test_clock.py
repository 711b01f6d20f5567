"""The platform clock: real time by default, frozen or shifted by tests, shared through a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crm_platform.engine import clock
from crm_platform.engine.clock import CLOCK, Clock


def test_a_fresh_clock_tells_real_aware_utc_time() -> None:
    c = Clock()
    before = dt.datetime.now(dt.UTC)
    now = c.now()
    assert now.tzinfo is dt.UTC and before <= now <= dt.datetime.now(dt.UTC)
    assert c.today() == now.date() and not c.moved


def test_set_freezes_advance_moves_reset_returns() -> None:
    c = Clock()
    c.set(dt.datetime(2030, 1, 31, 23, 30))  # naive means UTC
    assert c.now() == dt.datetime(2030, 1, 31, 23, 30, tzinfo=dt.UTC) == c.now()
    assert c.advance(dt.timedelta(hours=1)) == dt.datetime(2030, 2, 1, 0, 30, tzinfo=dt.UTC)
    assert c.today() == dt.date(2030, 2, 1)
    assert c.today(dt.timezone(dt.timedelta(hours=-5))) == dt.date(2030, 1, 31)
    c.advance(90)
    assert c.now() == dt.datetime(2030, 2, 1, 0, 31, 30, tzinfo=dt.UTC)
    c.set(dt.datetime(2030, 6, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))), frozen=False)  # running on from there
    first = c.now()
    assert dt.datetime(2030, 5, 31, 16, 0, tzinfo=dt.UTC) <= first < dt.datetime(2030, 5, 31, 16, 1, tzinfo=dt.UTC)
    assert c.now() >= first and c.moved
    c.reset()
    assert not c.moved and abs(c.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_scope_restores_the_process_clock() -> None:
    with CLOCK.scope():
        CLOCK.set(dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
        assert clock.now() == dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
        assert clock.today() == dt.date(2031, 1, 1)
    assert not CLOCK.moved


def test_two_clocks_sharing_a_file_tell_the_same_time(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    mover, reader = Clock(path), Clock(path)
    assert not reader.moved  # no file yet: real time
    mover.set(dt.datetime(2032, 5, 5, tzinfo=dt.UTC))
    assert reader.now() == dt.datetime(2032, 5, 5, tzinfo=dt.UTC)
    for _ in range(3):  # quick successive moves are all seen
        mover.advance(dt.timedelta(days=1))
    assert reader.now() == dt.datetime(2032, 5, 8, tzinfo=dt.UTC)
    mover.reset()
    assert not reader.moved
    local = Clock()
    local.set(dt.datetime(2033, 1, 1, tzinfo=dt.UTC))
    local.share(tmp_path / "other.json")  # the file takes the clock's state
    assert Clock(tmp_path / "other.json").now() == dt.datetime(2033, 1, 1, tzinfo=dt.UTC)
