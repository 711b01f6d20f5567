"""The menu designer (/admin/design/menus): the site's navigation as it is served (the packs'
menus.yaml and the layer's, ordered by `order`), and the layer's own menus: new menus, items
(an object, optionally one of its list views, optionally a label), their order, the menu's
label and position. Every change proposes the layer's new menus.yaml.

A pack's menu cannot be changed by the layer: the pack format has no menu extension, and a menu
named like another pack's is refused as a duplicate. The layer adds menus of its own instead."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.metadata.errors import did_you_mean
from crm_platform.metadata.model import Registry
from crm_platform.ui.screens.common import form_data
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.screens.design_flows import NAME, label_of, styled, yaml_rt
from crm_platform.ui.templating import render

FILE = "menus.yaml"


class MenuRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_menus(files: dict[str, str]) -> Any:
    """The layer's menus.yaml (round-trip: what else is in it stays as it is)."""
    text = files.get(FILE)
    data = yaml_rt().load(text) if text else None
    if not isinstance(data, dict):
        data = CommentedMap()
    if not isinstance(data.get("menus"), list):
        data["menus"] = CommentedSeq()
    return data


def with_menus(files: dict[str, str], data: Any) -> dict[str, str]:
    result = dict(files)
    if not data["menus"]:
        result.pop(FILE, None)
        return result
    stream = io.StringIO()
    yaml_rt().dump(data, stream)
    result[FILE] = stream.getvalue()
    return result


def _menu(data: Any, name: str) -> Any:
    menu = next((m for m in data["menus"] if isinstance(m, dict) and m.get("name") == name), None)
    if menu is None:
        raise MenuRefused(f"'{name}' is not a menu of the layer; a pack's menu cannot be changed (the pack format has no menu extension): add a menu of your own")
    menu.setdefault("items", CommentedSeq())
    return menu


def item_of(registry: Registry, form: Any) -> dict[str, Any]:
    """A menu item from the form, checked: a known object and, when given, one of its list views."""
    entity = str(form.get("entity") or "").strip()
    if entity not in registry.entities:
        raise MenuRefused(f"unknown object '{entity}'{did_you_mean(entity, registry.entities)}: a menu item opens the list of an object of the site" if entity
                          else "choose the object the menu item opens")
    item: dict[str, Any] = {"entity": entity}
    view = str(form.get("view") or "").strip()
    if view:
        view = view.split(".", 1)[1] if view.startswith(f"{entity}.") else view
        known = [v.name for v in registry.list_views_of(entity)]
        if view not in known:
            raise MenuRefused(f"{entity} has no list view '{view}'{did_you_mean(view, known)}" + (f"; its views: {', '.join(known)}" if known else ""))
        item["view"] = view
    if str(form.get("label_en") or "").strip():
        item["label"] = label_of(form, "label", entity)
    return item


def _order(form: Any) -> int | None:
    raw = str(form.get("order") or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise MenuRefused(f"the position is a whole number (menus are shown by it, smallest first), not '{raw}'") from None


async def page(request: Request, error: str | None = None, status: int = 200) -> Response:
    layer = layer_of(request)
    registry = layer.site.registry
    lang = request.state.actor.language
    mine = {m.get("name") for m in load_menus(layer.current_files())["menus"] if isinstance(m, dict)}
    menus = [{"name": m.name, "label": m.label.get(lang), "order": m.order, "pack": m.pack, "mine": m.name in mine and m.pack == "site",
              "label_en": m.label.en, "label_zh": m.label.zh_cn,
              "items": [{"entity": i.entity, "label": i.label.get(lang), "view": i.view} for i in m.items]} for m in registry.menus]
    context = {"site_menus": menus, "layer_menus": [m for m in menus if m["mine"]],
               "entities": sorted(((e.name, e.plural_label.get(lang)) for e in registry.entities.values() if not e.child_of), key=lambda p: p[1]),
               "views": sorted(registry.list_views), "error": error}
    return render(request, "design/menus.html", context, status=status)


async def _change(request: Request, change: Any, note: str) -> Response:
    """Apply `change(data, form)` to the layer's menus.yaml and propose it; a refusal changes nothing."""
    layer = layer_of(request)
    form = await form_data(request)
    files = layer.current_files()
    data = load_menus(files)
    try:
        note = change(layer.site.registry, data, form) or note
    except MenuRefused as exc:
        return await page(request, f"{exc.message}; nothing was changed", 422)
    return await propose(request, with_menus(files, data), note, "/admin/design/menus")


async def new_menu(request: Request) -> Response:
    def change(registry: Registry, data: Any, form: Any) -> str:
        name = str(form.get("name") or "").strip()
        if not NAME.match(name):
            raise MenuRefused("name the menu with lowercase letters, digits and _ (e.g. exhibitions)")
        if any(m.name == name for m in registry.menus) or any(isinstance(m, dict) and m.get("name") == name for m in data["menus"]):
            raise MenuRefused(f"a menu named '{name}' exists already")
        menu: dict[str, Any] = {"name": name, "label": label_of(form, "menu_label", name)}
        order = _order(form)
        if order is not None:
            menu["order"] = order
        menu["items"] = [item_of(registry, form)] if str(form.get("entity") or "").strip() else []
        data["menus"].append(styled(menu))
        return f"menus: new menu {name}"

    return await _change(request, change, "menus")


async def add_item(request: Request) -> Response:
    def change(registry: Registry, data: Any, form: Any) -> str:
        menu = _menu(data, str(form.get("menu") or ""))
        item = item_of(registry, form)
        menu["items"].append(styled(item))
        return f"menus: {item['entity']} in {menu['name']}"

    return await _change(request, change, "menus")


async def move_item(request: Request) -> Response:
    name, index = request.path_params["menu"], request.path_params["index"]

    def change(registry: Registry, data: Any, form: Any) -> str:
        items = _menu(data, name)["items"]
        if not 0 <= index < len(items):
            raise MenuRefused(f"menu '{name}' has no item {index + 1}")
        other = index - 1 if form.get("direction") == "up" else index + 1
        if not 0 <= other < len(items):
            raise MenuRefused("the item is at the end already")
        items[index], items[other] = items[other], items[index]
        return f"menus: order of {name}"

    return await _change(request, change, "menus")


async def remove_item(request: Request) -> Response:
    name, index = request.path_params["menu"], request.path_params["index"]

    def change(registry: Registry, data: Any, form: Any) -> str:
        items = _menu(data, name)["items"]
        if not 0 <= index < len(items):
            raise MenuRefused(f"menu '{name}' has no item {index + 1}")
        removed = items.pop(index)
        return f"menus: {removed.get('entity')} out of {name}"

    return await _change(request, change, "menus")


async def settings(request: Request) -> Response:
    name = request.path_params["menu"]

    def change(registry: Registry, data: Any, form: Any) -> str:
        menu = _menu(data, name)
        menu["label"] = styled(label_of(form, "menu_label", name))
        order = _order(form)
        if order is None:
            menu.pop("order", None)
        else:
            menu["order"] = order
        return f"menus: {name} label and position"

    return await _change(request, change, "menus")


async def remove_menu(request: Request) -> Response:
    name = request.path_params["menu"]

    def change(registry: Registry, data: Any, form: Any) -> str:
        menu = _menu(data, name)
        data["menus"].remove(menu)
        return f"menus: {name} removed"

    return await _change(request, change, "menus")


routes = [
    Route("/admin/design/menus", page, methods=["GET"]),
    Route("/admin/design/menus", new_menu, methods=["POST"]),
    Route("/admin/design/menus/items", add_item, methods=["POST"]),
    Route("/admin/design/menus/{menu:str}/items/{index:int}/move", move_item, methods=["POST"]),
    Route("/admin/design/menus/{menu:str}/items/{index:int}/remove", remove_item, methods=["POST"]),
    Route("/admin/design/menus/{menu:str}/settings", settings, methods=["POST"]),
    Route("/admin/design/menus/{menu:str}/remove", remove_menu, methods=["POST"]),
]
