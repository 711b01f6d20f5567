"""Email from the outbox over SMTP, received by a real local SMTP server (aiosmtpd): sent once per
key, held without a server, retried when the server refuses, then failed with the error kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK, Clock
from crm_platform.engine.site import Site
from tests.engine.smtp_testing import free_port, smtp_server

T0 = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with CLOCK.scope():
        CLOCK.set(T0)
        yield CLOCK


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CRM_SMTP_FROM", "crm@example.com")
    for name in ("CRM_SMTP_HOST", "CRM_SMTP_PORT", "CRM_SMTP_USERNAME", "CRM_SMTP_PASSWORD", "CRM_SMTP_STARTTLS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_SMTP_TIMEOUT", "5")
    return monkeypatch


def outbox(site: Site, outbox_id: int) -> dict:
    [row] = [r for r in jobs.list_outbox(site) if r["id"] == outbox_id]
    return row


def test_an_email_goes_out_over_smtp_once(kit: Site, clock: Clock, smtp_env: pytest.MonkeyPatch) -> None:
    with smtp_server() as (inbox, port):
        smtp_env.setenv("CRM_SMTP_HOST", "127.0.0.1")
        smtp_env.setenv("CRM_SMTP_PORT", str(port))
        queued = jobs.queue_email(kit, ["li.wei@example.com", "ops@example.com"], "审批通过: Quote Q-0001",
                                  "Your quote was approved.\n报价已批准。", key="quote-approved:1")
        again = jobs.queue_email(kit, "li.wei@example.com", "duplicate", "ignored", key="quote-approved:1")
    assert again == queued
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "审批通过: Quote Q-0001"
    assert message["From"] == "crm@example.com"
    assert message["To"] == "li.wei@example.com, ops@example.com"
    assert message.get_content().replace("\r\n", "\n").strip() == "Your quote was approved.\n报价已批准。"
    assert inbox.envelopes == [("crm@example.com", ["li.wei@example.com", "ops@example.com"])]
    row = outbox(kit, queued.outbox_id)
    assert (row["status"], row["attempts"], row["sent_at"], row["last_error"]) == ("sent", 1, T0, None)
    assert row["message_id"] == message["Message-ID"]
    assert jobs.get_job(kit, queued.job_id)["status"] == "done"


def test_without_an_smtp_host_emails_are_held_then_released(kit: Site, clock: Clock, smtp_env: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    queued = jobs.queue_email(kit, "a@example.com", "Reminder", "Warranty ends in 30 days")
    row = outbox(kit, queued.outbox_id)
    assert row["status"] == "held" and "CRM_SMTP_HOST" in row["last_error"]
    assert "held in the outbox" in caplog.text
    assert jobs.get_job(kit, queued.job_id)["status"] == "done"
    with smtp_server() as (inbox, port):
        smtp_env.setenv("CRM_SMTP_HOST", "127.0.0.1")
        smtp_env.setenv("CRM_SMTP_PORT", str(port))
        assert jobs.release_held(kit) == 1
    assert [m["Subject"] for m in inbox.messages] == ["Reminder"]
    assert outbox(kit, queued.outbox_id)["status"] == "sent"
    assert jobs.release_held(kit) == 0


def test_a_refusing_server_leads_to_retries_then_failed(kit: Site, clock: Clock, smtp_env: pytest.MonkeyPatch) -> None:
    with smtp_server(refuse=True) as (inbox, port):
        smtp_env.setenv("CRM_SMTP_HOST", "127.0.0.1")
        smtp_env.setenv("CRM_SMTP_PORT", str(port))
        queued = jobs.queue_email(kit, "b@example.com", "Escalation", "SR-0042 was not taken")
        job = jobs.get_job(kit, queued.job_id)
        assert (job["status"], job["attempts"]) == ("pending", 1)
        assert job["run_at"] == T0 + dt.timedelta(seconds=60)
        row = outbox(kit, queued.outbox_id)
        assert (row["status"], row["attempts"]) == ("queued", 1)
        assert "554" in row["last_error"]
        for _ in range(10):  # backoff 60 s, 120 s, 240 s, 480 s
            clock.advance(dt.timedelta(minutes=10))
            jobs.run_due(kit)
    assert inbox.refused == 5
    job = jobs.get_job(kit, queued.job_id)
    assert (job["status"], job["attempts"]) == ("failed", 5)
    assert "SMTPDataError" in job["last_error"] and "Refused by the test server" in job["last_error"]
    row = outbox(kit, queued.outbox_id)
    assert (row["status"], row["attempts"]) == ("failed", 5)
    assert "Refused by the test server" in row["last_error"]
    assert [r["id"] for r in jobs.list_outbox(kit, "failed")] == [queued.outbox_id]


def test_an_unreachable_server_is_retried_until_it_answers(kit: Site, clock: Clock, smtp_env: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there yet
    smtp_env.setenv("CRM_SMTP_HOST", "127.0.0.1")
    smtp_env.setenv("CRM_SMTP_PORT", str(port))
    queued = jobs.queue_email(kit, "c@example.com", "Hello", "body")
    row = outbox(kit, queued.outbox_id)
    assert row["status"] == "queued" and "ConnectionRefusedError" in row["last_error"]
    from tests.engine import smtp_testing

    inbox = smtp_testing.Inbox()
    controller = smtp_testing.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(60)
        jobs.run_due(kit)
    finally:
        controller.stop()
    assert [m["Subject"] for m in inbox.messages] == ["Hello"]
    row = outbox(kit, queued.outbox_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)


def test_an_email_queued_in_a_rolled_back_transaction_is_never_sent(kit: Site, smtp_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError), kit.engine.begin() as conn:
        jobs.queue_email(kit, "d@example.com", "Never", "body", key="never", conn=conn)
        raise RuntimeError("rolled back")
    assert jobs.list_outbox(kit) == []
    assert jobs.list_jobs(kit) == []
    with pytest.raises(ValueError, match="at least one recipient"):
        jobs.queue_email(kit, " , ", "No one", "body")
