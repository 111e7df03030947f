"""image uploads claimed per (cloud, checksum); a package's VIM images as rows, not a JSON column

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00

app_package.vim_images ({cloud: [image ids]}) was read, changed and written back by concurrent
workers, which loses notes where SELECT … FOR UPDATE is a no-op (SQLite). Its data moves into
package_vim_image, one row per (package, cloud, image), and the column goes.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_package = sa.table('app_package', sa.column('id', sa.String), sa.column('vim_images', sa.JSON))
_rows = sa.table('package_vim_image', sa.column('package_id', sa.String), sa.column('cloud', sa.String),
                 sa.column('image_id', sa.String), sa.column('created_at', sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.create_table(
        'image_upload',
        sa.Column('cloud', sa.String(length=255), primary_key=True),
        sa.Column('checksum', sa.String(length=160), primary_key=True),
        sa.Column('holder', sa.String(length=128), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('image_id', sa.String(length=64), nullable=True),
    )
    op.create_table(
        'package_vim_image',
        sa.Column('package_id', sa.String(length=36), sa.ForeignKey('app_package.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('cloud', sa.String(length=255), primary_key=True),
        sa.Column('image_id', sa.String(length=64), primary_key=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    conn = op.get_bind()
    rows = []
    for pkg_id, images in conn.execute(sa.select(_package.c.id, _package.c.vim_images)):
        for cloud, image_ids in (images or {}).items():
            rows += [{'package_id': pkg_id, 'cloud': cloud, 'image_id': i,
                      'created_at': sa.func.current_timestamp()} for i in dict.fromkeys(image_ids or [])]
    for row in rows:
        conn.execute(_rows.insert().values(**row))
    # Not batch mode: on SQLite that would rebuild app_package and lose its expression index
    # (uq_app_package_tenant_appd_id); both databases drop a plain column in place.
    op.execute('ALTER TABLE app_package DROP COLUMN vim_images')


def downgrade() -> None:
    op.execute('ALTER TABLE app_package ADD COLUMN vim_images JSON')
    conn = op.get_bind()
    images: dict[str, dict[str, list[str]]] = {}
    for pkg_id, cloud, image_id in conn.execute(sa.select(_rows.c.package_id, _rows.c.cloud, _rows.c.image_id)):
        images.setdefault(pkg_id, {}).setdefault(cloud, []).append(image_id)
    for pkg_id, by_cloud in images.items():
        conn.execute(_package.update().where(_package.c.id == pkg_id).values(vim_images=by_cloud))
    op.drop_table('package_vim_image')
    op.drop_table('image_upload')
