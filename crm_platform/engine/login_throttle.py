"""Login throttling against password guessing, kept in the database so it holds across app
processes: after `USER_LIMIT` failed logins for one username within `WINDOW` (or `ADDRESS_LIMIT`
from one client address), further attempts are refused with a wait, without checking the
password; a successful login clears the username's failures. Time comes from the platform clock."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.engine import clock

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

WINDOW = dt.timedelta(minutes=15)
USER_LIMIT = 5
ADDRESS_LIMIT = 30


class TooManyAttempts(Exception):
    """Refused before checking the password; `retry_after` seconds until the next try counts."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins: try again in {math.ceil(retry_after / 60)} minute(s)")
        self.retry_after = retry_after


class LoginThrottle:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_login_failure"]

    def check(self, username: str, address: str | None) -> None:
        """Raise TooManyAttempts when this username or address failed too often lately."""
        now = clock.now()
        since = now - WINDOW
        t = self.table
        with self.site.engine.connect() as conn:
            for column, value, limit in ((t.c.username, username.lower(), USER_LIMIT), (t.c.address, address, ADDRESS_LIMIT)):
                if not value:
                    continue
                recent = conn.execute(sa.select(t.c.at).where(column == value, t.c.at >= since).order_by(t.c.at.desc()).limit(limit)).scalars().all()
                if len(recent) >= limit:
                    oldest = recent[-1] if recent[-1].tzinfo else recent[-1].replace(tzinfo=dt.UTC)
                    raise TooManyAttempts(max(1, int((oldest + WINDOW - now).total_seconds())))

    def failed(self, username: str, address: str | None) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.table.insert().values(username=username.lower()[:150], address=(address or "")[:64] or None, at=clock.now()))
            conn.execute(self.table.delete().where(self.table.c.at < clock.now() - 4 * WINDOW))  # keep the table small

    def succeeded(self, username: str) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.username == username.lower()))
