"""public sign-up: requests awaiting double opt-in; outbox notices to someone not yet a contact

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column(
            "language",
            sa.Enum("nl", "fr", "en", name="language", native_enum=False, length=24,
                    create_constraint=True),
            nullable=False,
        ),
        sa.Column("topic_ids", sa.JSON(), nullable=False),
        sa.Column("consent_version", sa.String(length=40), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "email = lower(email)", name=op.f("ck_signup_requests_email_normalised")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
        sa.UniqueConstraint("email", name=op.f("uq_signup_requests_email")),
        sa.UniqueConstraint("public_id", name=op.f("uq_signup_requests_public_id")),
    )
    op.create_index("ix_signup_requests_expires_at", "signup_requests", ["expires_at"])
    with op.batch_alter_table("notice_outbox") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)


def downgrade():
    op.execute("DELETE FROM notice_outbox WHERE contact_id IS NULL")
    with op.batch_alter_table("notice_outbox") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ix_signup_requests_expires_at", table_name="signup_requests")
    op.drop_table("signup_requests")
