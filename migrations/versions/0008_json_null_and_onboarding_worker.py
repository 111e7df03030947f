"""JSON 'null' becomes SQL NULL in nullable JSON columns; the worker that holds an onboarding attempt

Before this, Python None in a JSON column was stored as the JSON text 'null', which ``IS NULL`` does not
match: a package whose upload cleared its failure was invisible to the onboarding reaper, and stayed
PROCESSING forever. The models now store None as NULL; this turns what was written before into NULL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# every nullable JSON column as of 0008
NULLABLE_JSON = {
    'app_package': ('user_defined_data', 'mec_info', 'software_images', 'additional_artifacts',
                    'onboarding_failure', 'appd_files', 'appd_model', 'vim_images'),
    'subscription': ('filters', 'authentication'),
    'mec_host': ('location', 'served_areas', 'latency_ms', 'services', 'features', 'networks'),
    'app_instance': ('resources',),
    'app_lcm_op_occ': ('operation_params', 'error', 'placement', 'steps_done', 'created'),
    'grant': ('grant',),
}


def upgrade() -> None:
    for table, columns in NULLABLE_JSON.items():
        for column in columns:
            # CAST works on both: PostgreSQL json has no '=' operator, SQLite stores the text
            op.execute(f'UPDATE "{table}" SET "{column}" = NULL WHERE CAST("{column}" AS TEXT) = \'null\'')
    # plain ALTER, not batch mode: a batch rebuild on SQLite would drop uq_app_package_tenant_appd_id
    op.add_column('app_package', sa.Column('job_worker', sa.String(length=255), nullable=True))


def downgrade() -> None:
    # NULL and 'null' both read back as None: nothing to undo for the data
    op.drop_column('app_package', 'job_worker')  # SQLite 3.35+: no table rebuild
