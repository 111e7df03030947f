"""tenants: owner tenant of packages, instances and subscriptions; appDId unique per tenant

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 11:40:05.512730
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# SQLite keeps the unique constraint of 0001 unnamed: batch mode finds it under this name
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _appd_unique_name(bind) -> str | None:
    for constraint in sa.inspect(bind).get_unique_constraints('app_package'):
        if constraint['column_names'] == ['appd_id']:
            return constraint['name']
    return None


def upgrade() -> None:
    bind = op.get_bind()
    name = _appd_unique_name(bind)
    with op.batch_alter_table('app_package', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('tenant', sa.String(length=128), nullable=True))
        batch_op.drop_constraint(name or 'uq_app_package_appd_id', type_='unique')
        batch_op.create_index(batch_op.f('ix_app_package_tenant'), ['tenant'], unique=False)
    # an expression index: SQLite batch mode cannot reflect it, so a later batch migration of app_package
    # must create it again after the table is rebuilt
    op.create_index('uq_app_package_tenant_appd_id', 'app_package',
                    [sa.text("coalesce(tenant, '')"), 'appd_id'], unique=True)
    for table in ('app_instance', 'subscription'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('tenant', sa.String(length=128), nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_tenant'), ['tenant'], unique=False)


def downgrade() -> None:
    # fails while two tenants hold the same appDId: global uniqueness cannot come back then
    for table in ('subscription', 'app_instance'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_tenant'))
            batch_op.drop_column('tenant')
    op.drop_index('uq_app_package_tenant_appd_id', table_name='app_package')
    with op.batch_alter_table('app_package', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_package_tenant'))
        batch_op.drop_column('tenant')
        batch_op.create_unique_constraint('uq_app_package_appd_id', ['appd_id'])
