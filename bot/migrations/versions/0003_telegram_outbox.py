"""telegram outbox (the calls to Telegram each update commits with its work) and the inbox's sender (workers
take one update per customer at a time)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database from before the migrations may have got the inbox with this column from the baseline's completion.
    if 'user_key' not in {c['name'] for c in sa.inspect(op.get_bind()).get_columns('telegram_inbox')}:
        with op.batch_alter_table('telegram_inbox', schema=None) as batch_op:
            batch_op.add_column(sa.Column('user_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
            batch_op.create_index(batch_op.f('ix_telegram_inbox_user_key'), ['user_key'], unique=False)
    op.create_table('telegram_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.BigInteger(), nullable=True),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('user_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('held_for', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('telegram_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telegram_outbox_update_id'), ['update_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telegram_outbox_held_for'), ['held_for'], unique=False)
        batch_op.create_index(batch_op.f('ix_telegram_outbox_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('telegram_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telegram_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_telegram_outbox_held_for'))
        batch_op.drop_index(batch_op.f('ix_telegram_outbox_update_id'))
    op.drop_table('telegram_outbox')
    with op.batch_alter_table('telegram_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telegram_inbox_user_key'))
        batch_op.drop_column('user_key')
