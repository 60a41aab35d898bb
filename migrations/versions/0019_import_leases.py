"""import leases: the worker process running an import job, and when its job was last queued

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE import_jobs SET queued_at = created_at")
    op.create_index("ix_import_jobs_status", "import_jobs", ["status"])


def downgrade():
    op.drop_index("ix_import_jobs_status", table_name="import_jobs")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("owner")
