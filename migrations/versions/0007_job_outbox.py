"""job outbox: jobs written with the state change that needs them; what an op's attempt runs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('task', sa.String(length=128), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('queue', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=36), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('sends', sa.Integer(), nullable=False),
        sa.Column('send_after', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
    )
    op.create_index('ix_job_subject', 'job', ['subject'])
    op.create_index('ix_job_due', 'job', ['state', 'send_after'])
    with op.batch_alter_table('app_lcm_op_occ') as batch_op:
        batch_op.add_column(sa.Column('run_kind', sa.String(length=16), nullable=False, server_default='RUN'))


def downgrade() -> None:
    with op.batch_alter_table('app_lcm_op_occ') as batch_op:
        batch_op.drop_column('run_kind')
    op.drop_index('ix_job_due', table_name='job')
    op.drop_index('ix_job_subject', table_name='job')
    op.drop_table('job')
