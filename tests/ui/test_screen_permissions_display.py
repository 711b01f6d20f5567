"""The generated screens offer only what the user may do (New, Edit, Delete, bulk delete, export,
kanban moves; 403 pages for forms opened without the right), show names rather than ids in the
timeline, computed money with its currency, pre-fill a related record's other references, and keep
a workflow's state field read-only on the New form. Issue #7, on a small pack of its own."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.ui.app import create_app
from tests.helpers import write_pack

SYSTEM = Actor.system()

SHOP = {
    "entities/customer.yaml": """
        name: customer
        label: {en: Customer, zh-CN: 客户}
        plural_label: {en: Customers, zh-CN: 客户}
        title_field: name
        search_fields: [name]
        fields:
          - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true}
          - {name: tier, type: picklist, label: {en: Tier, zh-CN: 等级}, options: [{value: gold, label: {en: Gold, zh-CN: 金牌}}, {value: silver, label: {en: Silver, zh-CN: 银牌}}]}
        """,
    "entities/contact.yaml": """
        name: contact
        label: {en: Contact, zh-CN: 联系人}
        plural_label: {en: Contacts, zh-CN: 联系人}
        title_field: name
        search_fields: [name]
        fields:
          - {name: name, type: text, label: {en: Name, zh-CN: 姓名}, required: true}
          - {name: customer, type: reference, entity: customer, label: {en: Customer, zh-CN: 客户}}
        """,
    "entities/order.yaml": """
        name: order
        label: {en: Order, zh-CN: 订单}
        plural_label: {en: Orders, zh-CN: 订单}
        title_field: name
        search_fields: [name]
        fields:
          - {name: name, type: text, label: {en: Order name, zh-CN: 订单名称}, required: true}
          - {name: customer, type: reference, entity: customer, label: {en: Customer, zh-CN: 客户}, on_delete: set_null}
          - {name: contact, type: reference, entity: contact, label: {en: Contact, zh-CN: 联系人}, on_delete: set_null}
          - {name: amount, type: money, label: {en: Amount, zh-CN: 金额}, currency: USD}
          - {name: net, type: formula, label: {en: Net, zh-CN: 净额}, expression: "round(amount / 2, 2)", result_type: money}
          - name: status
            type: picklist
            label: {en: Status, zh-CN: 状态}
            default: draft
            options:
              - {value: draft, label: {en: Draft, zh-CN: 草稿}}
              - {value: sent, label: {en: Sent, zh-CN: 已发送}}
              - {value: done, label: {en: Done, zh-CN: 完成}}
          - name: priority
            type: picklist
            label: {en: Priority, zh-CN: 优先级}
            options:
              - {value: low, label: {en: Low, zh-CN: 低}}
              - {value: high, label: {en: High, zh-CN: 高}}
        """,
    "entities/note.yaml": """
        name: note
        label: {en: Note, zh-CN: 备注}
        plural_label: {en: Notes, zh-CN: 备注}
        title_field: subject
        search_fields: [subject]
        fields:
          - {name: subject, type: text, label: {en: Subject, zh-CN: 主题}, required: true}
          - {name: order, type: reference, entity: order, label: {en: Order, zh-CN: 订单}}
          - {name: customer, type: reference, entity: customer, label: {en: Customer, zh-CN: 客户}}
          - {name: contact, type: reference, entity: contact, label: {en: Contact, zh-CN: 联系人}}
        """,
    "views/order.yaml": """
        entity: order
        views:
          - name: all
            label: {en: All orders, zh-CN: 全部订单}
            default: true
            columns: [name, customer, amount, net, status]
        """,
    "forms/order.yaml": """
        entity: order
        forms:
          - name: main
            label: {en: Order, zh-CN: 订单}
            sections:
              - label: {en: Order, zh-CN: 订单}
                fields: [name, customer, contact, amount, net, status, priority]
            related: [note.order]
        """,
    "workflows/order.yaml": """
        name: order_flow
        label: {en: Order flow, zh-CN: 订单流程}
        entity: order
        field: status
        initial: draft
        states:
          - name: draft
          - name: sent
          - name: done
            final: true
        transitions:
          - {name: send, label: {en: Send, zh-CN: 发送}, from: [draft], to: sent}
          - {name: finish, label: {en: Finish, zh-CN: 完成}, from: [sent], to: done}
        """,
}


@pytest.fixture
def shop(make_site: Callable[..., Site], tmp_path: Path) -> Site:
    write_pack(tmp_path / "packs", "shopkit", SHOP)
    return make_site(load_registry(["shopkit"], [tmp_path / "packs"]))


def person(site: Site, username: str, grants: dict[str, dict[str, str]]) -> Actor:
    """A user with a role of their own: {entity: {action: scope}}."""
    user_id = site.users.create_user(username, f"{username}-password", username.capitalize())
    site.permissions.create_role(f"{username}_role", f"{username} role")
    for entity, actions in grants.items():
        for action, scope in actions.items():
            site.permissions.grant(f"{username}_role", entity, action, scope)
    site.permissions.assign_role(user_id, f"{username}_role")
    actor = site.users.actor(user_id)
    assert actor is not None
    return actor


@contextmanager
def browser(site: Site, username: str) -> Iterator[TestClient]:
    with TestClient(create_app(site)) as client:
        page = client.get("/login")
        client.post("/login", data={"username": username, "password": f"{username}-password", "csrf_token": csrf_of(page.text)})
        client.csrf = csrf_of(client.get("/").text)  # type: ignore[attr-defined]
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


ALL = {"read": "all"}


# -- 1. actions only where the user may do them ----------------------------------------------------
def test_list_detail_and_kanban_offer_only_what_the_role_allows_on_each_record(shop: Site) -> None:
    ann = person(shop, "ann", {"order": {"read": "all", "create": "all", "update": "own", "delete": "own"}, "customer": ALL, "note": ALL})
    ben = person(shop, "ben", {"order": {"read": "all", "create": "all", "update": "all", "delete": "all"}, "customer": ALL})
    customer = shop.records.create(SYSTEM, "customer", {"name": "Acme"})
    mine = shop.records.create(ann, "order", {"name": "Ann's order", "customer": customer["id"], "priority": "low"})
    other = shop.records.create(ben, "order", {"name": "Ben's order", "customer": customer["id"], "priority": "high"})
    with browser(shop, "ann") as client:
        listing = client.get("/app/order").text
        assert 'href="/app/order/new"' in listing and "/app/order/import" in listing
        assert "export.csv" not in listing  # no export permission
        assert f'name="ids" value="{mine["id"]}"' in listing and f'name="ids" value="{other["id"]}"' not in listing
        assert "Delete selected" in listing

        own_detail = client.get(f"/app/order/{mine['id']}").text
        assert f'href="/app/order/{mine["id"]}/edit"' in own_detail and f'/app/order/{mine["id"]}/delete' in own_detail
        other_detail = client.get(f"/app/order/{other['id']}").text
        assert "/edit" not in other_detail and "/delete" not in other_detail
        assert 'href="/app/note/new?order=' not in other_detail  # ann may not create notes

        board = client.get("/app/order/kanban?field=priority").text
        assert f'data-move-url="/app/order/{mine["id"]}/move"' in board
        assert f'data-move-url="/app/order/{other["id"]}/move"' not in board and "Ben&#39;s order" in board

        refused = client.get(f"/app/order/{other['id']}/edit")
        assert refused.status_code == 403 and "editing this Order" in refused.text and "update" in refused.text
        assert client.get(f"/app/order/{mine['id']}/edit").status_code == 200
        # the refusal stands on save too, and changes nothing
        posted = client.post(f"/app/order/{other['id']}/edit", data={"csrf_token": client.csrf, "version": "1", "name": "Taken"})  # type: ignore[attr-defined]
        assert posted.status_code == 403
    assert shop.records.get(SYSTEM, "order", other["id"])["name"] == "Ben's order"


def test_a_reader_sees_no_new_edit_delete_or_move_and_new_form_is_a_403(shop: Site) -> None:
    person(shop, "rita", {"order": {"read": "all", "export": "all"}, "customer": ALL, "note": {"read": "all", "create": "all"}})
    order = shop.records.create(SYSTEM, "order", {"name": "Read only", "priority": "low"})
    with browser(shop, "rita") as client:
        listing = client.get("/app/order").text
        assert 'href="/app/order/new"' not in listing and "/app/order/import" not in listing
        assert "Delete selected" not in listing and 'name="ids"' not in listing and "data-select-all" not in listing
        assert "export.csv" in listing
        detail = client.get(f"/app/order/{order['id']}").text
        assert "/edit" not in detail and "/delete" not in detail
        assert f'href="/app/note/new?order={order["id"]}"' in detail  # notes she may create
        board = client.get("/app/order/kanban?field=priority").text
        assert "data-move-url" not in board and 'href="/app/order/new"' not in board and "Read only" in board

        refused = client.get("/app/order/new")
        assert refused.status_code == 403
        assert "Your role does not allow creating Order" in refused.text and "order.create" in refused.text
        client.post("/me/language", data={"language": "zh-CN", "csrf_token": client.csrf})  # type: ignore[attr-defined]
        chinese = client.get("/app/order/new")
        assert chinese.status_code == 403 and "您的角色不允许新建订单" in chinese.text
        assert "您的角色没有订单的新建权限" in chinese.text and "does not allow" not in chinese.text  # the detail line too
        posted = client.post("/app/order/new", data={"csrf_token": client.csrf, "name": "Sneaky"})  # type: ignore[attr-defined]
        assert posted.status_code == 403
    assert shop.records.list(SYSTEM, "order", ListQuery()).total == 1


# -- 2. the timeline shows names ---------------------------------------------------------------------
def test_timeline_shows_referenced_titles_deleted_marks_and_picklist_labels(shop: Site) -> None:
    acme = shop.records.create(SYSTEM, "customer", {"name": "Acme Tiles"})
    beta = shop.records.create(SYSTEM, "customer", {"name": "Beta Glass"})
    order = shop.records.create(SYSTEM, "order", {"name": "Big order", "customer": acme["id"], "priority": "low"})
    shop.records.update(SYSTEM, "order", order["id"], {"version": 1, "customer": beta["id"], "priority": "high", "amount": "80"})
    shop.records.delete(SYSTEM, "customer", acme["id"])
    gone = shop.records.create(SYSTEM, "customer", {"name": "Gone Co"})
    shop.records.update(SYSTEM, "order", order["id"], {"version": 2, "customer": gone["id"]})
    table = shop.schema.tables["customer"]
    with shop.engine.begin() as conn:  # purged for good (the reference is emptied by set_null)
        conn.execute(table.delete().where(table.c.id == gone["id"]))
    shop.users.create_user("root", "root-password", is_admin=True)
    with browser(shop, "root") as client:
        page = client.get(f"/app/order/{order['id']}").text
        history = client.get(f"/api/v1/records/order/{order['id']}/history").json()["data"]
    timeline = page[page.index('class="timeline"'):]
    assert "Customer: Acme Tiles (deleted) → Beta Glass" in timeline
    assert "Priority: Low → High" in timeline
    assert "Amount: — → $80.00" in timeline
    assert f"Customer: Beta Glass → #{gone['id']} (deleted)" in timeline
    assert f"Customer: {acme['id']}" not in timeline
    change = next(h for h in history if h["field"] == "customer" and h["action"] == "update")
    assert change["old_ref"] == {"id": acme["id"], "title": "Acme Tiles", "deleted": True}
    assert change["new_ref"] == {"id": beta["id"], "title": "Beta Glass", "deleted": False}


# -- 3. computed money with its currency -----------------------------------------------------------
def test_computed_money_shows_the_currency_in_detail_list_kanban_and_exports(shop: Site) -> None:
    shop.records.create(SYSTEM, "order", {"name": "Priced", "amount": "250", "priority": "high"})
    shop.users.create_user("root", "root-password", is_admin=True)
    with browser(shop, "root") as client:
        record_id = shop.records.list(SYSTEM, "order", ListQuery()).records[0]["id"]
        detail = client.get(f"/app/order/{record_id}").text
        listing = client.get("/app/order").text
        exported = client.get("/app/order/export.csv").content.decode("utf-8-sig")
        workbook = openpyxl.load_workbook(io.BytesIO(client.get("/app/order/export.xlsx").content))
        board = client.get("/app/order/kanban?field=priority").text
    assert "¥125.00" in detail and "$250.00" in detail  # the formula has no currency: the site default
    assert "¥125.00" in listing and "¥125.00" in board
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0][3] == "Net" and rows[1][3] == "¥125.00" and rows[1][2] == "$250.00"
    sheet = workbook.active
    header = [c.value for c in sheet[1]]
    net = sheet.cell(row=2, column=header.index("Net") + 1)
    assert float(net.value) == 125 and "¥" in net.number_format


# -- 4. New from a related list pre-fills the parent's other references ------------------------------
def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert match, f"no input {name} on the form"
    return match.group(1)


def test_new_from_a_related_list_takes_the_parents_other_references_the_user_may_see(shop: Site) -> None:
    nora = person(shop, "nora", {"order": ALL, "customer": ALL, "contact": {"read": "own", "create": "all"}, "note": {"read": "all", "create": "all"}})
    acme = shop.records.create(SYSTEM, "customer", {"name": "Acme Tiles"})
    hidden_contact = shop.records.create(SYSTEM, "contact", {"name": "Someone else's", "customer": acme["id"]})
    own_contact = shop.records.create(nora, "contact", {"name": "Nora's contact", "customer": acme["id"]})
    seen = shop.records.create(SYSTEM, "order", {"name": "Seen", "customer": acme["id"], "contact": own_contact["id"]})
    unseen = shop.records.create(SYSTEM, "order", {"name": "Unseen", "customer": acme["id"], "contact": hidden_contact["id"]})
    other = shop.records.create(SYSTEM, "customer", {"name": "Beta Glass"})
    with browser(shop, "nora") as client:
        detail = client.get(f"/app/order/{seen['id']}").text
        assert f'href="/app/note/new?order={seen["id"]}"' in detail
        form = client.get(f"/app/note/new?order={seen['id']}").text
        assert hidden_value(form, "order") == str(seen["id"])
        assert hidden_value(form, "customer") == str(acme["id"]) and 'value="Acme Tiles"' in form
        assert hidden_value(form, "contact") == str(own_contact["id"]) and 'value="Nora&#39;s contact"' in form

        not_visible = client.get(f"/app/note/new?order={unseen['id']}").text
        assert hidden_value(not_visible, "customer") == str(acme["id"])
        assert hidden_value(not_visible, "contact") == "" and "Someone else" not in not_visible

        given = client.get(f"/app/note/new?order={seen['id']}&customer={other['id']}").text
        assert hidden_value(given, "customer") == str(other["id"])  # what the link sets is kept

        saved = client.post("/app/note/new", data={"csrf_token": client.csrf, "subject": "Call back", "order": str(seen["id"]),  # type: ignore[attr-defined]
                                                   "customer": str(acme["id"]), "contact": str(own_contact["id"])}, follow_redirects=False)
        assert saved.status_code == 303
    note = shop.records.list(SYSTEM, "note", ListQuery()).records[0]
    assert (note["order"], note["customer"], note["contact"]) == (seen["id"], acme["id"], own_contact["id"])


# -- 5. the workflow's state field ----------------------------------------------------------------
def test_the_state_field_is_read_only_on_new_and_only_its_initial_state_is_accepted(shop: Site) -> None:
    shop.users.create_user("root", "root-password", is_admin=True)
    with browser(shop, "root") as client:
        form = client.get("/app/order/new").text
        assert 'name="status"' not in form
        assert re.search(r'<output id="f-status">Draft</output>', form)
        edit_id = shop.records.create(SYSTEM, "order", {"name": "Existing"})["id"]
        assert 'name="status"' not in client.get(f"/app/order/{edit_id}/edit").text

        refused = client.post("/app/order/new", data={"csrf_token": client.csrf, "name": "Jumped", "status": "done"})  # type: ignore[attr-defined]
        assert refused.status_code == 422
        assert 'id="f-status-error"' in refused.text and "starts in state &#39;draft&#39;" in refused.text
        assert re.search(r'<output id="f-status">Draft</output>', refused.text)
        initial = client.post("/app/order/new", data={"csrf_token": client.csrf, "name": "Initial", "status": "draft"}, follow_redirects=False)  # type: ignore[attr-defined]
        assert initial.status_code == 303
        moved = client.post(f"/app/order/{edit_id}/edit", data={"csrf_token": client.csrf, "version": "1", "name": "Existing", "status": "sent"})  # type: ignore[attr-defined]
        assert moved.status_code == 422 and 'id="f-status-error"' in moved.text
    names = sorted(r["name"] for r in shop.records.list(SYSTEM, "order", ListQuery()).records)
    assert names == ["Existing", "Initial"]
    assert shop.records.get(SYSTEM, "order", edit_id)["status"] == "draft"


def test_the_api_refuses_a_state_other_than_the_initial_one(shop: Site) -> None:
    user_id = shop.users.create_user("api", None, is_admin=True)
    token, _ = shop.users.create_token(user_id, "t")
    with TestClient(create_app(shop)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        refused = client.post("/api/v1/records/order", json={"name": "Jumped", "status": "sent"})
        assert refused.status_code == 422
        assert [d["field"] for d in refused.json()["error"]["details"]] == ["status"]
        accepted = client.post("/api/v1/records/order", json={"name": "Fine", "status": "draft"})
        assert accepted.status_code == 201 and accepted.json()["status"] == "draft"
        assert client.get("/api/v1/records/order").json()["total"] == 1
