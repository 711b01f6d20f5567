"""The platform's one clock: `now()` (aware UTC) and `today()`; tests can move it.

Everything that asks "what time is it" for business reasons (job due times, timers, SLA
escalations, reminders, backoff) should ask this module, so a test can jump a day ahead and
watch timers fire without sleeping.

- `CLOCK` is the process's clock; `now()` and `today()` read it.
- `CLOCK.set(when)` freezes it at `when` (it stays there until moved again);
  `CLOCK.set(when, frozen=False)` makes it run on from `when`;
  `CLOCK.advance(delta)` moves it forward (frozen or running); `CLOCK.reset()` returns to real time.
- `with CLOCK.scope(): ...` restores the state on exit (the pytest fixture pattern).
- Across processes: with the environment variable `CRM_CLOCK_FILE` set (tests that start a
  `crm-platform worker`), the clock's state lives in that JSON file; `set`/`advance` write it and
  `now()` re-reads it when the file changed (one `stat` per call), so the test and the worker
  share one moved clock. Without the variable the state is in memory only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CLOCK", "Clock", "now", "today"]


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


class Clock:
    """Real time shifted by an offset, or a frozen instant; optionally shared through a file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = dt.timedelta(0)
        self._frozen: dt.datetime | None = None
        self._path = Path(path) if path else None
        self._seen: tuple[int, int, int] | None = None

    @classmethod
    def from_env(cls) -> Clock:
        return cls(os.environ.get("CRM_CLOCK_FILE") or None)

    # -- reading --------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware UTC."""
        with self._lock:
            self._load()
            return self._frozen if self._frozen is not None else _real_now() + self._offset

    def today(self, tz: dt.tzinfo | None = None) -> dt.date:
        """Today's date in UTC (or in `tz`)."""
        current = self.now()
        return (current.astimezone(tz) if tz is not None else current).date()

    @property
    def moved(self) -> bool:
        with self._lock:
            self._load()
            return self._frozen is not None or bool(self._offset)

    # -- moving ---------------------------------------------------------------------------------

    def set(self, when: dt.datetime, *, frozen: bool = True) -> None:
        """Jump to `when` (naive means UTC): frozen there, or running on from there."""
        when = _aware(when)
        with self._lock:
            if frozen:
                self._frozen, self._offset = when, dt.timedelta(0)
            else:
                self._frozen, self._offset = None, when - _real_now()
            self._save()

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move forward by `delta` (a timedelta or seconds); returns the new now()."""
        if not isinstance(delta, dt.timedelta):
            delta = dt.timedelta(seconds=delta)
        with self._lock:
            self._load()
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta
            self._save()
        return self.now()

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._frozen, self._offset = None, dt.timedelta(0)
            self._save()

    @contextmanager
    def scope(self) -> Iterator[Clock]:
        """Whatever happens to the clock inside, it is as before afterwards."""
        with self._lock:
            self._load()
            saved = (self._frozen, self._offset)
        try:
            yield self
        finally:
            with self._lock:
                self._frozen, self._offset = saved
                self._save()

    # -- the shared file --------------------------------------------------------------------------

    def share(self, path: str | os.PathLike[str] | None) -> None:
        """Keep this clock's state in `path` from now on (None: in memory again); the file
        takes this clock's current state. Give the same path to other processes as
        CRM_CLOCK_FILE and they see the same time."""
        with self._lock:
            self._load()
            self._path, self._seen = (Path(path) if path else None), None
            self._save()

    def _load(self) -> None:
        if self._path is None:
            return
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._seen, self._frozen, self._offset = None, None, dt.timedelta(0)
            return
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp == self._seen:
            return
        data = json.loads(self._path.read_text(encoding="utf-8") or "{}")
        frozen = data.get("frozen_at")
        self._frozen = dt.datetime.fromisoformat(frozen) if frozen else None
        self._offset = dt.timedelta(seconds=float(data.get("offset_seconds", 0)))
        self._seen = stamp

    def _save(self) -> None:
        if self._path is None:
            return
        data = {"frozen_at": self._frozen.isoformat() if self._frozen else None,
                "offset_seconds": self._offset.total_seconds()}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self._path)  # a new inode: readers notice even within one mtime tick
        st = os.stat(self._path)
        self._seen = (st.st_mtime_ns, st.st_ino, st.st_size)


CLOCK = Clock.from_env()


def now() -> dt.datetime:
    """The platform's current instant (aware UTC)."""
    return CLOCK.now()


def today(tz: dt.tzinfo | None = None) -> dt.date:
    """The platform's current date (UTC unless `tz`)."""
    return CLOCK.today(tz)
