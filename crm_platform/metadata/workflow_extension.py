"""A dependent pack's changes to a workflow (`extends: <workflow>` in workflows/*.yaml): its
states and transitions are added, and one named like an existing state or transition replaces
it (e.g. a guard that sends custom orders to a review first). The merged definition keeps, for
every entry, the file and position it came from, so problems point at the right file."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Place
from crm_platform.metadata.yaml_source import JsonPath, SourceFile

Route = tuple[SourceFile, JsonPath]


class MergedSource:
    """Looks like the base workflow's SourceFile; paths into spliced entries resolve to their own file."""

    def __init__(self, base: SourceFile, data: dict[str, Any], routes: dict[tuple[Any, ...], Route]) -> None:
        self.base = base
        self.data = data
        self.routes = routes
        self.path = base.path

    def resolve(self, path: JsonPath) -> Route:
        for size in (2, 1):
            key = tuple(path[:size])
            if len(path) >= size and key in self.routes:
                source, prefix = self.routes[key]
                return source, (*prefix, *path[size:])
        return self.base, tuple(path)

    def where(self, path: JsonPath, at_key: bool = False) -> tuple[int | None, int | None]:
        source, resolved = self.resolve(path)
        return source.where(resolved, at_key)

    def place(self, path: JsonPath) -> Place:
        source, resolved = self.resolve(path)
        line, col = source.where(resolved)
        return Place(source.path, line, col)

    def problem(self, path: JsonPath, message: str, code: str = "pack.invalid", at_key: bool = False) -> Problem:
        source, resolved = self.resolve(path)
        return source.problem(resolved, message, code, at_key)


def merge(base: MergedSource | SourceFile, extension: SourceFile) -> MergedSource:
    """The base definition with the extension's states, transitions, moved_states and initial."""
    merged_from = base if isinstance(base, MergedSource) else MergedSource(base, base.data, {})
    data = dict(merged_from.data)
    routes = dict(merged_from.routes)
    ext = extension.data
    for section in ("states", "transitions"):
        items = list(data.get(section, []))
        for j, item in enumerate(ext.get(section, [])):
            index = next((i for i, existing in enumerate(items) if existing.get("name") == item.get("name")), len(items))
            if index == len(items):
                items.append(item)
            else:
                items[index] = item
            routes[(section, index)] = (extension, (section, j))
        data[section] = items
    if "moved_states" in ext:
        data["moved_states"] = {**(data.get("moved_states") or {}), **ext["moved_states"]}
        for key in ext["moved_states"]:
            routes[("moved_states", key)] = (extension, ("moved_states", key))
    if "initial" in ext:
        data["initial"] = ext["initial"]
        routes[("initial",)] = (extension, ("initial",))
    return MergedSource(merged_from.base, data, routes)
