"""notification delivery isolation: leases counted per subscription, a circuit breaker per subscription

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-13 10:00:00

The deliverer claims only what its POST threads can run, at most MEAO_NOTIFY_PER_SUBSCRIPTION
messages of one subscription at a time (outbox.claimed_until marks the held ones), and skips in SQL the
subscriptions whose circuit is open (notify_circuit), so one dead callbackUri delays nobody else.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_outbox_claimed_until', 'outbox', ['claimed_until'])
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'])
    op.create_table('notify_circuit',
                    sa.Column('subscription_id', sa.String(length=36), nullable=False),
                    sa.Column('failures', sa.Integer(), nullable=False),
                    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('subscription_id'))


def downgrade() -> None:
    op.drop_table('notify_circuit')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_index('ix_outbox_claimed_until', table_name='outbox')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claimed_until')
