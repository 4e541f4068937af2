"""Browser sessions remember VNeID's session id (`sid`) for front-channel logout

OpenID Connect Front-Channel Logout 1.0 (and a sid-only back-channel logout token) names the
provider's session, not the person: the broker ends the browser sessions that session started.
Existing sessions have no `sid` (NULL) and are ended only by person-wide logouts, as before.

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-29 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_browser_sessions_vneid_sid"


def upgrade() -> None:
    with op.batch_alter_table("browser_sessions") as batch:
        batch.add_column(sa.Column("vneid_sid", sa.String(255), nullable=True))
    op.create_index(INDEX, "browser_sessions", ["vneid_sid"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="browser_sessions")
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_column("vneid_sid")
