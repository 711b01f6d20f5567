"""The platform's own tables: users, org units, tokens, history, counters, schema state, files."""

from __future__ import annotations

import sqlalchemy as sa

from crm_platform.engine.column_types import UTCDateTime

# Ids are BIGINT on PostgreSQL and INTEGER (the rowid alias) on SQLite.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def id_column() -> sa.Column[int]:
    return sa.Column("id", IdType, primary_key=True, autoincrement=True)


def define_system_tables(md: sa.MetaData) -> dict[str, sa.Table]:
    tables = [
        sa.Table(
            "crm_org_unit", md, id_column(),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False, server_default="department"),
            sa.Column("parent_id", IdType, sa.ForeignKey("crm_org_unit.id", ondelete="RESTRICT"), index=True),
            sa.Column("path", sa.String(1000), nullable=False, server_default="/", index=True),
            sa.Column("created_at", UTCDateTime(), nullable=False),
        ),
        sa.Table(
            "crm_user", md, id_column(),
            sa.Column("username", sa.String(150), nullable=False, unique=True),
            sa.Column("email", sa.String(254)),
            sa.Column("display_name", sa.String(200), nullable=False),
            sa.Column("password_hash", sa.String(255)),
            sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("language", sa.String(8), nullable=False, server_default="en"),
            sa.Column("unit_id", IdType, sa.ForeignKey("crm_org_unit.id", ondelete="SET NULL"), index=True),
            sa.Column("manager_id", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL"), index=True),
            sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("last_login_at", UTCDateTime()),
        ),
        sa.Table(
            "crm_api_token", md, id_column(),
            sa.Column("user_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE"), nullable=False, index=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("prefix", sa.String(16), nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("last_used_at", UTCDateTime()),
            sa.Column("expires_at", UTCDateTime()),
            sa.Column("revoked_at", UTCDateTime()),
        ),
        sa.Table(
            "crm_history", md, id_column(),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("field", sa.String(40)),
            sa.Column("old_value", sa.Text),
            sa.Column("new_value", sa.Text),
            sa.Column("changed_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("changed_at", UTCDateTime(), nullable=False),
            sa.Index("ix_crm_history_record", "entity", "record_id", "version"),
        ),
        sa.Table(
            "crm_autonumber", md,
            sa.Column("entity", sa.String(40), primary_key=True),
            sa.Column("field", sa.String(40), primary_key=True),
            sa.Column("period", sa.String(16), primary_key=True),
            sa.Column("last_value", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "crm_schema_table", md,
            sa.Column("table_name", sa.String(63), primary_key=True),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("archived_at", UTCDateTime()),
        ),
        sa.Table(
            "crm_schema_column", md,
            sa.Column("table_name", sa.String(63), primary_key=True),
            sa.Column("column_name", sa.String(63), primary_key=True),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("field", sa.String(40), nullable=False),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("archived_at", UTCDateTime()),
        ),
        sa.Table(
            "crm_metadata_version", md, id_column(),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("packs", sa.Text, nullable=False),
            sa.Column("applied_by", sa.String(150), nullable=False),
            sa.Column("applied_at", UTCDateTime(), nullable=False),
            sa.Column("changes", sa.Text, nullable=False),
        ),
        sa.Table(
            "crm_seed_record", md,
            sa.Column("entity", sa.String(40), primary_key=True),
            sa.Column("key", sa.String(100), primary_key=True),
            sa.Column("pack", sa.String(40), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "crm_file", md, id_column(),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("content_type", sa.String(127), nullable=False),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("storage_key", sa.String(255), nullable=False),
            sa.Column("created_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("created_at", UTCDateTime(), nullable=False),
        ),
        sa.Table(
            "crm_attachment", md, id_column(),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("file_id", IdType, sa.ForeignKey("crm_file.id", ondelete="CASCADE"), nullable=False),
            sa.Column("created_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Index("ix_crm_attachment_record", "entity", "record_id"),
        ),
        sa.Table(
            "crm_saved_view", md, id_column(),
            sa.Column("user_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE"), nullable=False),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("name", sa.String(80), nullable=False),
            sa.Column("params", sa.Text, nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.UniqueConstraint("user_id", "entity", "name", name="uq_crm_saved_view_name"),
        ),
        sa.Table(
            "crm_policy", md, id_column(),
            sa.Column("ptype", sa.String(8), nullable=False),
            sa.Column("v0", sa.String(255), nullable=False),
            sa.Column("v1", sa.String(255), nullable=False),
            sa.Column("v2", sa.String(255)),
            sa.Column("v3", sa.String(255)),
            sa.Column("v4", sa.String(255)),
            sa.Column("v5", sa.String(255)),
            sa.Index("ix_crm_policy_v0", "ptype", "v0"),
        ),
        sa.Table(
            "crm_role", md,
            sa.Column("name", sa.String(40), primary_key=True),
            sa.Column("label_en", sa.String(200), nullable=False),
            sa.Column("label_zh", sa.String(200), nullable=False),
            sa.Column("source", sa.String(60), nullable=False),
        ),
        sa.Table(
            "crm_field_access", md,
            sa.Column("role", sa.String(40), primary_key=True),
            sa.Column("entity", sa.String(40), primary_key=True),
            sa.Column("field", sa.String(40), primary_key=True),
            sa.Column("access", sa.String(16), nullable=False),
            sa.Column("source", sa.String(60), nullable=False),
        ),
        sa.Table(
            "crm_share", md, id_column(),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("user_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE")),
            sa.Column("unit_id", IdType, sa.ForeignKey("crm_org_unit.id", ondelete="CASCADE")),
            sa.Column("access", sa.String(8), nullable=False),
            sa.Column("created_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Index("ix_crm_share_record", "entity", "record_id"),
            sa.Index("ix_crm_share_user", "user_id"),
        ),
        sa.Table(
            "crm_setting", md,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        ),
        sa.Table(
            "crm_approval", md, id_column(),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("workflow", sa.String(40), nullable=False),
            sa.Column("state", sa.String(64), nullable=False),
            sa.Column("name", sa.String(40), nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("steps", sa.Integer, nullable=False),
            sa.Column("approver_kind", sa.String(16), nullable=False),
            sa.Column("approver_value", sa.String(150)),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("requested_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("decided_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("decided_at", UTCDateTime()),
            sa.Column("comment", sa.Text),
            sa.Index("ix_crm_approval_pending", "status", "entity", "record_id"),
        ),
        sa.Table(
            "crm_notification", md, id_column(),
            sa.Column("user_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE"), nullable=False),
            sa.Column("text_en", sa.Text, nullable=False),
            sa.Column("text_zh", sa.Text, nullable=False),
            sa.Column("link", sa.String(300)),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("read_at", UTCDateTime()),
            sa.Index("ix_crm_notification_user", "user_id", "read_at"),
        ),
        sa.Table(
            "crm_workflow_history", md, id_column(),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("workflow", sa.String(40), nullable=False),
            sa.Column("transition", sa.String(40), nullable=False),
            sa.Column("from_state", sa.String(64)),
            sa.Column("to_state", sa.String(64), nullable=False),
            sa.Column("comment", sa.Text),
            sa.Column("changed_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
            sa.Column("changed_at", UTCDateTime(), nullable=False),
            sa.Index("ix_crm_workflow_history_record", "entity", "record_id"),
        ),
        sa.Table(
            "crm_job", md, id_column(),
            sa.Column("key", sa.String(200), nullable=False, unique=True),
            sa.Column("name", sa.String(80), nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("max_attempts", sa.Integer, nullable=False),
            sa.Column("last_error", sa.Text),
            sa.Column("run_at", UTCDateTime(), nullable=False),
            sa.Column("lease_until", UTCDateTime()),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("started_at", UTCDateTime()),
            sa.Column("finished_at", UTCDateTime()),
            sa.Index("ix_crm_job_due", "status", "run_at"),
        ),
        sa.Table(
            "crm_outbox", md, id_column(),
            sa.Column("key", sa.String(200), unique=True),
            sa.Column("to_address", sa.String(1000), nullable=False),
            sa.Column("subject", sa.String(500), nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("last_error", sa.Text),
            sa.Column("message_id", sa.String(255)),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("sent_at", UTCDateTime()),
            sa.Index("ix_crm_outbox_status", "status"),
        ),
        sa.Table(
            "crm_reminder_log", md, id_column(),
            sa.Column("reminder", sa.String(80), nullable=False),
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("record_id", sa.BigInteger, nullable=False),
            sa.Column("date_value", sa.String(40), nullable=False),  # the date it fired for: a changed date fires again
            sa.Column("fired_at", UTCDateTime(), nullable=False),
            sa.UniqueConstraint("reminder", "record_id", "date_value", name="uq_crm_reminder_log_once"),
        ),
        sa.Table(
            "crm_login_failure", md, id_column(),  # failed logins of the last hour (login_throttle.py)
            sa.Column("username", sa.String(150), nullable=False),
            sa.Column("address", sa.String(64)),
            sa.Column("at", UTCDateTime(), nullable=False),
            sa.Index("ix_crm_login_failure_user", "username", "at"),
            sa.Index("ix_crm_login_failure_address", "address", "at"),
        ),
        sa.Table(
            "crm_report", md, id_column(),  # saved reports (reports.py): private, or shared with everyone
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("owner_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE")),
            sa.Column("shared", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("created_at", UTCDateTime(), nullable=False),
        ),
        sa.Table(
            "crm_dashboard", md, id_column(),  # dashboards users build in the browser (user_dashboards.py)
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("owner_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE"), nullable=False, index=True),
            sa.Column("sharing", sa.String(16), nullable=False, server_default="private"),  # private | everyone | roles
            sa.Column("roles", sa.Text, nullable=False, server_default="[]"),  # JSON: role names when shared with roles
            sa.Column("widgets", sa.Text, nullable=False, server_default="[]"),  # JSON: [{title, chart, spec, report_id}] in order
            sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # optimistic lock: every change names the version it saw
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("updated_at", UTCDateTime(), nullable=False),
        ),
        sa.Table(
            "crm_site_layer", md, id_column(),  # versions of the designer's customization layer (site_layer.py)
            sa.Column("files", sa.Text, nullable=False),
            sa.Column("note", sa.String(500)),
            sa.Column("created_by", sa.String(150)),
            sa.Column("created_at", UTCDateTime(), nullable=False),
        ),
        sa.Table(
            "crm_import", md, id_column(),  # imports from CSV / Excel (imports.py): the file, the mapping, progress
            sa.Column("entity", sa.String(40), nullable=False),
            sa.Column("user_id", IdType, sa.ForeignKey("crm_user.id", ondelete="CASCADE"), nullable=False, index=True),
            sa.Column("file_name", sa.String(255), nullable=False),
            sa.Column("source", sa.LargeBinary),  # the uploaded file, dropped once the import ran
            sa.Column("settings", sa.Text, nullable=False),  # JSON: mapping, key field, mode
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("total", sa.Integer, nullable=False, server_default="0"),
            sa.Column("rows_done", sa.Integer, nullable=False, server_default="0"),
            sa.Column("created", sa.Integer, nullable=False, server_default="0"),
            sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
            sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
            sa.Column("errors", sa.Text),  # JSON: every bad row with field and reason
            sa.Column("message", sa.Text),
            sa.Column("job_id", IdType),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("started_at", UTCDateTime()),
            sa.Column("finished_at", UTCDateTime()),
        ),
    ]
    return {t.name: t for t in tables}


SYSTEM_TABLE_NAMES = (
    "crm_org_unit", "crm_user", "crm_api_token", "crm_history", "crm_autonumber",
    "crm_schema_table", "crm_schema_column", "crm_metadata_version", "crm_seed_record", "crm_file",
    "crm_attachment", "crm_saved_view", "crm_policy", "crm_role", "crm_field_access", "crm_share", "crm_setting", "crm_workflow_history", "crm_approval", "crm_notification",
    "crm_job", "crm_outbox", "crm_reminder_log", "crm_site_layer", "crm_report", "crm_login_failure", "crm_import",
    "crm_dashboard",
)
