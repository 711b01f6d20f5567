"""Test steps for the administration screens' two-step changes: a role or org-tree form posts to a
preview (the diff of roles.yaml / org.yaml, or the problems), and the preview's Apply form posts
the files, the note and the way back to /admin/design/apply."""

from __future__ import annotations

import html
import re
from typing import Any

from starlette.testclient import TestClient


def _hidden(page: str, pattern: str, what: str) -> str:
    found = re.search(pattern, page, re.S)
    assert found, f"the preview has no {what}: {page[:3000]}"
    return html.unescape(found.group(1)) if what != "diff" else found.group(1)


def apply_form(page: str) -> dict[str, str]:
    """The fields the preview's Apply form posts, as the browser would send them."""
    return {"files": _hidden(page, r'<textarea name="files" hidden>(.*?)</textarea>', "files"),
            "note": _hidden(page, r'name="note" value="([^"]*)"', "note"),
            "back": _hidden(page, r'name="back" value="([^"]*)"', "back")}


def diff_of(page: str) -> str:
    """The unified diff a preview shows, as text."""
    shown = _hidden(page, r'<pre class="diff"[^>]*>(.*?)</pre>', "diff")
    return html.unescape(re.sub(r"<[^>]+>", "", shown))


def preview(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    """Post an admin form; the answer must be the preview page, without problems."""
    shown = client.post(url, data={"csrf_token": client.csrf, **data})
    assert shown.status_code == 200, re.findall(r'<ul class="problems">.*?</ul>', shown.text, re.S) or shown.text[:3000]
    assert "<h1>Review the change</h1>" in shown.text
    return shown


def apply(client: TestClient, shown: Any) -> Any:
    """Press Apply on a preview page; the answer is the designer's home naming the new version."""
    applied = client.post("/admin/design/apply", data={"csrf_token": client.csrf, **apply_form(shown.text)})
    assert applied.status_code == 200 and "is applied and served" in applied.text, applied.text[:3000]
    return applied


def preview_and_apply(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    return apply(client, preview(client, url, data))
