"""Who is acting: the user behind a request, job or command."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    is_admin: bool = False
    unit_id: int | None = None
    language: str = "en"
    display_name: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The platform itself (CLI, seed loading): acts with full rights and no user id."""
        return cls(None, name, is_admin=True, display_name=name)
