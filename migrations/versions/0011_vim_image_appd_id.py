"""a package's VIM image remembers which software image descriptor of the AppD it realises

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 10:00:00

The Grant's vimAssets.softwareImages (MEC 010-2 clause 6.2.4.11) map the AppD's software image
descriptor ids to VIM image ids. Rows noted before this revision have no descriptor id; the next
instantiation that ensures the image fills it in, and until then the grant leaves the image out.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('package_vim_image', sa.Column('appd_sw_image_id', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('package_vim_image') as batch:
        batch.drop_column('appd_sw_image_id')
