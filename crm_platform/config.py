"""Site configuration from environment variables, each with a working default."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _var_dir() -> Path:
    return Path(os.environ.get("CRM_VAR_DIR", "var")).resolve()


@dataclass(frozen=True)
class Settings:
    """What a site needs to run; read once at start-up by `Settings.from_env()`."""

    database_url: str
    packs: tuple[str, ...]
    var_dir: Path
    secret_key: str
    redis_url: str | None = None
    secure_cookies: bool = False
    max_upload_mb: int = 20
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = _var_dir()
        database_url = os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{var_dir / 'crm.sqlite3'}"
        packs = tuple(p.strip() for p in os.environ.get("CRM_PACKS", "crm_standard").split(",") if p.strip())
        return cls(
            database_url=database_url,
            packs=packs,
            var_dir=var_dir,
            secret_key=os.environ.get("CRM_SECRET_KEY") or _stored_secret(var_dir),
            redis_url=os.environ.get("CRM_REDIS_URL") or None,
            secure_cookies=os.environ.get("CRM_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
            max_upload_mb=int(os.environ.get("CRM_MAX_UPLOAD_MB", "20")),
        )


def _stored_secret(var_dir: Path) -> str:
    """A secret generated once and kept in var/secret_key (mode 600)."""
    path = var_dir / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    return secret
