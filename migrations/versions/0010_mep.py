"""the MEP of each MEC host: its app instances (Mp1 clients, authorisations), rules, subscriptions and
service registry; where a host's MEP serves (mec_host.mep_url)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_JSON = sa.JSON(none_as_null=True)
_TS = sa.DateTime(timezone=True)


def _app_fk() -> sa.ForeignKey:
    return sa.ForeignKey('mep_app.app_instance_id', ondelete='CASCADE')


def upgrade() -> None:
    op.add_column('mec_host', sa.Column('mep_url', sa.String(length=512), nullable=True))
    op.add_column('app_lcm_op_occ', sa.Column('graceful', _JSON, nullable=True))
    op.create_table(
        'mep_app',
        sa.Column('app_instance_id', sa.String(length=36), primary_key=True),
        sa.Column('host_id', sa.String(length=64), nullable=False, index=True),
        sa.Column('client_id', sa.String(length=128), nullable=False, unique=True),
        sa.Column('secret_hash', sa.String(length=255), nullable=False),
        sa.Column('registered', sa.Boolean(), nullable=False),
        sa.Column('app_name', sa.String(length=255)),
        sa.Column('app_provider', sa.String(length=255)),
        sa.Column('appd_id', sa.String(length=255)),
        sa.Column('services_required', _JSON),
        sa.Column('services_optional', _JSON),
        sa.Column('services_produced', _JSON),
        sa.Column('features_required', _JSON),
        sa.Column('ports', _JSON),
        sa.Column('realised', _JSON),
        sa.Column('ready', sa.Boolean(), nullable=False),
        sa.Column('termination', _JSON),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=False),
    )
    op.create_table(
        'mep_rule',
        sa.Column('app_instance_id', sa.String(length=36), _app_fk(), primary_key=True),
        sa.Column('kind', sa.String(length=8), primary_key=True),
        sa.Column('rule_id', sa.String(length=255), primary_key=True),
        sa.Column('host_id', sa.String(length=64), nullable=False, index=True),
        sa.Column('body', _JSON, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
    )
    op.create_table(
        'mep_subscription',
        sa.Column('id', sa.String(length=36), primary_key=True),
        sa.Column('app_instance_id', sa.String(length=36), _app_fk(), nullable=False, index=True),
        sa.Column('host_id', sa.String(length=64), nullable=False, index=True),
        sa.Column('subscription_type', sa.String(length=64), nullable=False),
        sa.Column('callback_reference', sa.Text(), nullable=False),
        sa.Column('body', _JSON, nullable=False),
        sa.Column('created_at', _TS, nullable=False),
    )
    op.create_table(
        'mep_service',
        sa.Column('ser_instance_id', sa.String(length=36), primary_key=True),
        sa.Column('host_id', sa.String(length=64), nullable=False, index=True),
        sa.Column('app_instance_id', sa.String(length=36), _app_fk(), nullable=True, index=True),
        sa.Column('ser_name', sa.String(length=255), nullable=False),
        sa.Column('body', _JSON, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
    )
    op.create_index('ix_mep_service_host_name', 'mep_service', ['host_id', 'ser_name'])


def downgrade() -> None:
    for table in ('mep_service', 'mep_subscription', 'mep_rule', 'mep_app'):
        op.drop_table(table)
    op.drop_column('app_lcm_op_occ', 'graceful')
    op.drop_column('mec_host', 'mep_url')
