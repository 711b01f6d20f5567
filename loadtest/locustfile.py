"""Locust users for the load test: sales people of the demo org working through the REST API.

Run by `loadtest/run_load.py` (which sets up the site, the servers and the environment below);
by hand: `LOADTEST_OUT=/tmp/lt .venv/bin/locust -f loadtest/locustfile.py --headless -u 50
-r 10 -t 60s --stop-timeout 20 --host http://127.0.0.1:8000` on a site made by `demo setup`.

Each simulated user logs in with a token (POST /api/v1/auth/token as one of the demo org's sales
people, password from packs/crm_standard/org.yaml), creates an account with one opportunity and
then mixes:

  list pages with filters, sorting and search        account, activity, opportunity
  record detail GETs                                  records seen in lists or made by this user
  creates                                             accounts and follow-ups (activities)
  updates (PATCH with the version)                    only records this user created
  a workflow transition                               this user's opportunity, through its open stages

Writes touch only records the simulated user made, so no two users edit one record and an
optimistic-locking conflict (409) is a failure here, like any other non-2xx answer.
Every created record carries a marker `<run>-u<user>-<n>` (account.notes, activity.details,
opportunity.description, the token's name); every acknowledged write (201 of a create, 200 of
an update or a transition) is appended to `$LOADTEST_OUT/acks-<pid>.jsonl`, and every request's
outcome and time to `$LOADTEST_OUT/samples-<pid>.jsonl`, for run_load.py to count and compare
with the database afterwards.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

RUN = os.environ.get("LOADTEST_RUN", "lt")
OUT = Path(os.environ.get("LOADTEST_OUT", "."))
PASSWORD = os.environ.get("LOADTEST_PASSWORD", "demo-pass-2026")
USERNAMES = os.environ.get("LOADTEST_USERS", "li.rep,wang.rep,xu.rep,lin.lead,chen.director").split(",")
WAIT_MIN = float(os.environ.get("LOADTEST_WAIT_MIN", "0.2"))
WAIT_MAX = float(os.environ.get("LOADTEST_WAIT_MAX", "1.0"))
HOSTS = [h for h in os.environ.get("LOADTEST_HOSTS", "").split(",") if h]  # users spread over these, round robin

SEARCH_WORDS = ["陶瓷", "建材", "佛山", "广州", "装饰", "Ceramics", "Trading", "KH-", "酒店", "地产", RUN]
CUSTOMER_TYPES = ["end_customer", "dealer", "public_body"]
ACTIVITY_KINDS = ["call", "visit", "email", "meeting", "wechat", "other"]
RESULTS = ["positive", "neutral", "negative", "no_answer"]
OPEN_STAGES = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]

NAME_CHARS = "华南东西北海山江河湖金银宝丰盛兴旺隆泰安康明光辉星月云天宏博嘉瑞祥福德信和美雅新中正诚达通远航"
LATIN = "bcdfghjklmnpqrstvwxz"
VOWELS = "aeiou"

_numbers = itertools.count(1)


def company_name() -> str:
    """A made-up company name unlike the others: the site's duplicate check (a similar name is a
    409 `possible_duplicate`) runs on every created account, as it does for real users."""
    chinese = "".join(random.choices(NAME_CHARS, k=4))
    latin = "".join(random.choice(LATIN) + random.choice(VOWELS) for _ in range(4)).capitalize()
    return f"{chinese}建材 {latin}"
_acks: Any = None
_samples: Any = None


def _open_outputs() -> None:
    global _acks, _samples
    if _acks is None:
        OUT.mkdir(parents=True, exist_ok=True)
        _acks = (OUT / f"acks-{os.getpid()}.jsonl").open("a", encoding="utf-8")
        _samples = (OUT / f"samples-{os.getpid()}.jsonl").open("a", encoding="utf-8")


def ack(**fields: Any) -> None:
    """Record one acknowledged write (flushed at once: a lost client must not lose its acks)."""
    _open_outputs()
    _acks.write(json.dumps(fields, ensure_ascii=False) + "\n")
    _acks.flush()


@events.request.add_listener
def _record_sample(request_type: str, name: str, response_time: float, exception: BaseException | None,
                   response: Any = None, **_: Any) -> None:
    _open_outputs()
    status = getattr(response, "status_code", None)
    sample = {"name": name, "ms": round(response_time, 3), "ok": exception is None, "status": status,
              "end": time.time()}
    if exception is not None:
        sample["error"] = str(exception)[:300]
    _samples.write(json.dumps(sample) + "\n")


@events.quitting.add_listener
def _close(**_: Any) -> None:
    for handle in (_acks, _samples):
        if handle is not None:
            handle.flush()


class SalesUser(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)
    network_timeout = 60.0
    connection_timeout = 60.0

    def __init__(self, environment: Any) -> None:
        self.number = next(_numbers)
        if HOSTS:
            self.host = HOSTS[(self.number - 1) % len(HOSTS)]
        super().__init__(environment)

    def on_start(self) -> None:
        self.username = USERNAMES[(self.number - 1) % len(USERNAMES)]
        self.created = 0
        self.seen: dict[str, list[int]] = {"account": [], "activity": [], "opportunity": []}
        self.mine: dict[str, dict[int, int]] = {"account": {}, "activity": {}}  # id -> version
        self.headers: dict[str, str] = {}
        token_name = self.marker()
        with self.client.post("/api/v1/auth/token", json={"username": self.username, "password": PASSWORD,
                                                          "name": token_name},
                              name="POST /auth/token", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"login {self.username}: {response.status_code} {response.text[:200]}")
                raise RuntimeError(f"login failed for {self.username}")
            body = response.json()
            ack(kind="create", entity="token", id=body["id"], marker=token_name, user=self.username)
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        self.opportunity: dict[str, Any] | None = None
        self.create_account()
        self.create_opportunity()

    # -- helpers ---------------------------------------------------------------------------

    def marker(self) -> str:
        self.created = getattr(self, "created", 0) + 1
        return f"{RUN}-u{self.number}-{self.created}"

    def get(self, path: str, name: str, **params: Any) -> dict[str, Any] | None:
        with self.client.get(path, params=params, headers=self.headers, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:300]}")
                return None
            return response.json()

    def write(self, method: str, path: str, name: str, body: dict[str, Any], expect: int) -> dict[str, Any] | None:
        with self.client.request(method, path, json=body, headers=self.headers, name=name, catch_response=True) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code} {response.text[:300]}")
                return None
            return response.json()

    def remember(self, entity: str, page: dict[str, Any] | None) -> None:
        if not page:
            return
        seen = self.seen[entity]
        seen.extend(r["id"] for r in page["data"][:10])
        del seen[:-60]

    def create_opportunity(self) -> None:
        if not self.mine["account"]:
            self.create_account()
            return
        marker = self.marker()
        record = self.write("POST", "/api/v1/records/opportunity", "POST /records/opportunity",
                            {"name": f"Load test {marker}", "account": next(iter(self.mine["account"])),
                             "description": marker, "expected_close": "2027-06-30"}, 201)
        if record is not None:
            ack(kind="create", entity="opportunity", id=record["id"], marker=marker, user=self.username)
            self.opportunity = record

    # -- reads -------------------------------------------------------------------------------

    @task(4)
    def list_accounts(self) -> None:
        params: dict[str, Any] = {"page_size": random.choice([20, 50]), "sort": random.choice(["-created_at", "name", "-updated_at"])}
        if random.random() < 0.5:
            params["q"] = random.choice(SEARCH_WORDS)
        if random.random() < 0.5:
            params["customer_type"] = random.choice(CUSTOMER_TYPES)
        if random.random() < 0.3:
            params["active"] = "true"
        self.remember("account", self.get("/api/v1/records/account", "GET /records/account (list)", **params))

    @task(2)
    def search_accounts(self) -> None:
        self.remember("account", self.get("/api/v1/records/account", "GET /records/account?q= (search)",
                                          q=random.choice(SEARCH_WORDS), page_size=20))

    @task(3)
    def list_activities(self) -> None:
        params: dict[str, Any] = {"page_size": 20, "sort": "-occurred_at"}
        if random.random() < 0.6:
            params["kind"] = random.choice(ACTIVITY_KINDS)
        if random.random() < 0.4:
            params["occurred_at__gte"] = "2025-01-01T00:00:00+00:00"
        if random.random() < 0.3:
            params["q"] = random.choice(SEARCH_WORDS)
        self.remember("activity", self.get("/api/v1/records/activity", "GET /records/activity (list)", **params))

    @task(2)
    def list_opportunities(self) -> None:
        params: dict[str, Any] = {"page_size": 20, "sort": random.choice(["-amount", "expected_close", "-created_at"])}
        if random.random() < 0.7:
            params["stage__in"] = ",".join(random.sample(OPEN_STAGES, 2))
        self.remember("opportunity", self.get("/api/v1/records/opportunity", "GET /records/opportunity (list)", **params))

    @task(5)
    def detail(self) -> None:
        entity = random.choice(["account", "activity", "opportunity"])
        ids = self.seen[entity] + list(self.mine.get(entity, {}))
        if not ids:
            self.list_accounts()
            return
        self.get(f"/api/v1/records/{entity}/{random.choice(ids)}", f"GET /records/{entity}/{{id}}")

    # -- writes ------------------------------------------------------------------------------

    @task(2)
    def create_account(self) -> None:
        marker = self.marker()
        record = self.write("POST", "/api/v1/records/account", "POST /records/account",
                            {"name": company_name(), "customer_type": random.choice(CUSTOMER_TYPES),
                             "region": random.choice(["广东·佛山", "广东·广州", "上海"]), "notes": marker}, 201)
        if record is not None:
            ack(kind="create", entity="account", id=record["id"], marker=marker, user=self.username)
            self.mine["account"][record["id"]] = record["version"]

    @task(3)
    def create_activity(self) -> None:
        marker = self.marker()
        accounts = list(self.mine["account"])
        body: dict[str, Any] = {"subject": f"Follow-up {marker}", "kind": random.choice(ACTIVITY_KINDS), "status": "done",
                                "occurred_at": "2026-01-15T09:30:00+00:00", "result": random.choice(RESULTS),
                                "details": marker}
        if accounts:
            body["account"] = random.choice(accounts)
        record = self.write("POST", "/api/v1/records/activity", "POST /records/activity", body, 201)
        if record is not None:
            ack(kind="create", entity="activity", id=record["id"], marker=marker, user=self.username)
            self.mine["activity"][record["id"]] = record["version"]

    @task(3)
    def update_own_record(self) -> None:
        entity = random.choice([e for e in ("account", "activity") if self.mine[e]] or ["account"])
        if not self.mine[entity]:
            self.create_account()
            return
        record_id = random.choice(list(self.mine[entity]))
        version = self.mine[entity][record_id]
        if entity == "account":
            field, value = "phone", f"+86 757 {random.randint(1000, 9999)} {random.randint(1000, 9999)}"
        else:
            field, value = "result", random.choice(RESULTS)
        record = self.write("PATCH", f"/api/v1/records/{entity}/{record_id}", f"PATCH /records/{entity}/{{id}}",
                            {"version": version, field: value}, 200)
        if record is not None:
            self.mine[entity][record_id] = record["version"]
            ack(kind="update", entity=entity, id=record_id, field=field, value=value, version=record["version"],
                user=self.username)

    @task(2)
    def move_opportunity(self) -> None:
        if self.opportunity is None:
            self.create_opportunity()
            return
        current = self.opportunity["stage"]
        target = random.choice([s for s in OPEN_STAGES if s != current])
        record = self.write("POST", f"/api/v1/records/opportunity/{self.opportunity['id']}/transitions/to_{target}",
                            "POST /records/opportunity/{id}/transitions/{name}", {"comment": f"load test {RUN}"}, 200)
        if record is not None:
            self.opportunity = record
            ack(kind="transition", entity="opportunity", id=record["id"], to=target, version=record["version"],
                user=self.username)
