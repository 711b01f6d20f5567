"""Helpers for tests: writing small packs to a folder, and opening sites on the test database."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_pack(root: Path, name: str, files: dict[str, str], depends: list[str] | None = None, version: str = "1.0.0") -> Path:
    """Write a pack folder `root/name` with a pack.yaml and the given files (dedented)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    deps = ", ".join(depends or [])
    manifest = f"name: {name}\nversion: {version}\ntitle: {{en: {name}, zh-CN: {name}}}\ndepends: [{deps}]\n"
    (folder / "pack.yaml").write_text(manifest, encoding="utf-8")
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def entity_yaml(name: str, fields: str, extra: str = "") -> str:
    """An entity file with labels filled in; `fields` is the YAML list body (dedented)."""
    body = textwrap.indent(textwrap.dedent(fields).strip("\n"), "  ")
    return f"name: {name}\nlabel: {{en: {name}, zh-CN: {name}}}\n{extra}fields:\n{body}\n"


def user_with_role(site, username: str, password: str, scope: str = "all", role: str = "worker", **kwargs):  # type: ignore[no-untyped-def]
    """A user holding a role that may do everything on every entity within `scope`."""
    from crm_platform.engine.records.errors import ValidationFailed

    user_id = site.users.create_user(username, password, **kwargs)
    try:
        site.permissions.create_role(role, role.capitalize())
        site.permissions.grant(role, "*", "*", scope)
    except ValidationFailed:
        pass  # the role exists already
    site.permissions.assign_role(user_id, role)
    return user_id


def log_in(client, username: str, password: str) -> str:  # type: ignore[no-untyped-def]
    """Log a TestClient in through the login page; returns the session's CSRF token (also sent as a header)."""
    import re

    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    client.csrf = token
    client.headers["X-CSRF-Token"] = token
    return token
