"""Users and credentials: argon2 password hashes and personal access tokens stored hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError, NotFound, ValidationFailed

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

TOKEN_PREFIX = "crm_"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,149}$")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD = 8


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.users = site.schema.system["crm_user"]
        self.tokens = site.schema.system["crm_api_token"]

    # -- users ---------------------------------------------------------------------------
    def create_user(self, username: str, password: str | None, display_name: str | None = None, email: str | None = None,
                    is_admin: bool = False, language: str = "en", unit_id: int | None = None, manager_id: int | None = None) -> int:
        errors = []
        if not _USERNAME.match(username or ""):
            errors.append(FieldError("username", "2-150 characters: letters, digits and _ . @ -, starting with a letter or digit"))
        if password is not None and len(password) < MIN_PASSWORD:
            errors.append(FieldError("password", f"at least {MIN_PASSWORD} characters"))
        if language not in ("en", "zh-CN"):
            errors.append(FieldError("language", "en or zh-CN"))
        if errors:
            raise ValidationFailed(errors)
        with self.site.engine.begin() as conn:
            if conn.execute(sa.select(self.users.c.id).where(self.users.c.username == username)).first():
                raise ValidationFailed([FieldError("username", f"user '{username}' already exists", "duplicate")])
            return conn.execute(self.users.insert().values(
                username=username, password_hash=_hasher.hash(password) if password else None,
                display_name=display_name or username, email=email, is_admin=is_admin, language=language,
                unit_id=unit_id, manager_id=manager_id, active=True, created_at=utcnow(),
            ).returning(self.users.c.id)).scalar_one()

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValidationFailed([FieldError("password", f"at least {MIN_PASSWORD} characters")])
        with self.site.engine.begin() as conn:
            done = conn.execute(self.users.update().where(self.users.c.username == username).values(password_hash=_hasher.hash(password)))
            if done.rowcount == 0:
                raise NotFound(f"user '{username}' not found")

    def find(self, username: str) -> dict[str, Any] | None:
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()
        return dict(row) if row else None

    def actor(self, user_id: int) -> Actor | None:
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.users).where(self.users.c.id == user_id, self.users.c.active.is_(True))).mappings().first()
        return _actor(row) if row else None

    def set_language(self, user_id: int, language: str) -> None:
        if language not in ("en", "zh-CN"):
            raise BadRequest("language must be en or zh-CN")
        with self.site.engine.begin() as conn:
            conn.execute(self.users.update().where(self.users.c.id == user_id).values(language=language))

    def authenticate(self, username: str, password: str, address: str | None = None) -> Actor | None:
        """The user for a correct username and password; None otherwise (same work either way).
        Raises TooManyAttempts, without checking the password, after repeated failures."""
        from crm_platform.engine.login_throttle import LoginThrottle

        throttle = LoginThrottle(self.site)
        throttle.check(username, address)
        actor = self._check_password(username, password)
        if actor is None:
            throttle.failed(username, address)
        else:
            throttle.succeeded(username)
        return actor

    def _check_password(self, username: str, password: str) -> Actor | None:
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.users).where(self.users.c.username == username)).mappings().first()
        stored = row["password_hash"] if row and row["active"] else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or stored is None:
            return None
        with self.site.engine.begin() as conn:
            values: dict[str, Any] = {"last_login_at": utcnow()}
            if _hasher.check_needs_rehash(stored):
                values["password_hash"] = _hasher.hash(password)
            conn.execute(self.users.update().where(self.users.c.id == row["id"]).values(**values))
        return _actor(row)

    # -- tokens --------------------------------------------------------------------------
    def create_token(self, user_id: int, name: str, days: int | None = None) -> tuple[str, dict[str, Any]]:
        """A new token; its plain text is returned once and never stored."""
        if not name or len(name) > 100:
            raise ValidationFailed([FieldError("name", "a token needs a name of 1-100 characters")])
        if days is not None and not 1 <= days <= 3650:
            raise ValidationFailed([FieldError("days", "between 1 and 3650")])
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = {"user_id": user_id, "name": name, "token_hash": hash_token(token), "prefix": token[:10],
               "created_at": now, "expires_at": now + dt.timedelta(days=days) if days else None}
        with self.site.engine.begin() as conn:
            row["id"] = conn.execute(self.tokens.insert().values(**row).returning(self.tokens.c.id)).scalar_one()
        return token, _token_info(row)

    def actor_for_token(self, token: str) -> Actor | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        now = utcnow()
        query = (
            sa.select(self.users, self.tokens.c.id.label("token_id"), self.tokens.c.last_used_at)
            .select_from(self.tokens.join(self.users, self.users.c.id == self.tokens.c.user_id))
            .where(self.tokens.c.token_hash == hash_token(token), self.tokens.c.revoked_at.is_(None), self.users.c.active.is_(True))
            .where(sa.or_(self.tokens.c.expires_at.is_(None), self.tokens.c.expires_at > now))
        )
        with self.site.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] > dt.timedelta(minutes=5):
            with self.site.engine.begin() as conn:
                conn.execute(self.tokens.update().where(self.tokens.c.id == row["token_id"]).values(last_used_at=now))
        return _actor(row)

    def list_tokens(self, user_id: int) -> list[dict[str, Any]]:
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(self.tokens).where(self.tokens.c.user_id == user_id).order_by(self.tokens.c.id)).mappings()
            return [_token_info(dict(r)) for r in rows]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self.site.engine.begin() as conn:
            done = conn.execute(self.tokens.update().where(self.tokens.c.id == token_id, self.tokens.c.user_id == user_id, self.tokens.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
            if done.rowcount == 0:
                raise NotFound(f"token {token_id} not found")


def _actor(row: Any) -> Actor:
    return Actor(row["id"], row["username"], bool(row["is_admin"]), row["unit_id"], row["language"], row["display_name"])


def _token_info(row: dict[str, Any]) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": row["id"], "name": row["name"], "prefix": row["prefix"], "created_at": iso(row["created_at"]),
            "expires_at": iso(row.get("expires_at")), "last_used_at": iso(row.get("last_used_at")), "revoked_at": iso(row.get("revoked_at"))}
