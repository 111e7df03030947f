"""the keyset order of every paged list is indexed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 10:00:00

A page of a list (meao.db.keyset) reads WHERE (created_at, id) > (:after) ORDER BY created_at, id
LIMIT n; with these indexes it costs the page, not the table. Subscriptions are listed per API.
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_app_package_list_order', 'app_package', ['created_at', 'id']),
    ('ix_subscription_list_order', 'subscription', ['api', 'created_at', 'id']),
    ('ix_app_instance_list_order', 'app_instance', ['created_at', 'id']),
    ('ix_app_lcm_op_occ_list_order', 'app_lcm_op_occ', ['start_time', 'id']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
