"""auth clients: an operator flag (MEAO_TENANT_ISOLATION: only operators see across tenants)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00

Before, a client without a tenant saw every tenant's resources; now it must be an operator to do so.
The bootstrap ``admin`` client is the installation's operator, so it keeps its view across tenants;
any other client without a tenant must be registered again with ``--operator`` or ``--tenant``.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('auth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('operator', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(sa.text("UPDATE auth_client SET operator = :yes WHERE client_id = 'admin' AND tenant IS NULL")
               .bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table('auth_client', schema=None) as batch_op:
        batch_op.drop_column('operator')
