"""ledger: a bounce is a ledger event (kind ``bounced``), so the changes feed carries it

Revision ID: 0017
Revises: 0016

Only the CHECK constraint of ``consent_events.kind`` changes. SQLite rebuilds the table for
that (batch mode): dropping the old table drops its append-only triggers, so they are made
again; the rows are copied as they are, hashes untouched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

KINDS = (
    "imported",
    "subscribed",
    "unsubscribed",
    "resubscribed",
    "objection",
    "preferences",
    "paused",
    "renewed",
    "rectified",
    "exported",
    "erased",
    "anonymised",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
    "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
    "CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events "
    "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
)


def _kinds_check(kinds) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def _replace_check(kinds) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("consent_events_no_update", "consent_events_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        with op.batch_alter_table("consent_events", recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_consent_events_event_kind"), type_="check")
            batch_op.create_check_constraint("event_kind", _kinds_check(kinds))
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        return
    op.drop_constraint(op.f("ck_consent_events_event_kind"), "consent_events", type_="check")
    op.create_check_constraint("event_kind", "consent_events", _kinds_check(kinds))


def upgrade():
    _replace_check((*KINDS, "bounced"))


def downgrade():
    # Bounces recorded meanwhile would break the old constraint (and the ledger refuses
    # deletes): a downgrade only works on a ledger without them.
    _replace_check(KINDS)
