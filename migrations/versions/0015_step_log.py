"""op occurrences: the step timeline (step_log) the browser console shows

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:30:00

A JSON list of {name, startedAt, endedAt, worker, attempt}, one entry per step an attempt started
(rollback undo steps named ``undo:<step>``); written at the step boundaries, in the transaction that
already records ``steps_done``. NULL for occurrences that ran before this revision.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_lcm_op_occ', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_log', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('app_lcm_op_occ', schema=None) as batch_op:
        batch_op.drop_column('step_log')
