"""Privacy: citizen IDs sealed with a blind index, the audit trail chained and append-only,
consent records

- `accounts`, `federated_links`, `review_cases`: `citizen_id` (plain text) becomes
  `citizen_id_sealed` (AES-GCM, `vssid_broker.sealing`); accounts and review cases also get
  `citizen_id_index` (HMAC blind index). The unique constraint on accounts moves to the index.
  Existing rows are sealed in batches, under the keys of the running configuration
  (`VSSID_KEY_ENCRYPTION_KEY`, `VSSID_BLIND_INDEX_KEY`, or their files).
- `audit_events`: `prev_hash` and `entry_hash`; existing rows are chained in id order. Triggers
  refuse UPDATE and DELETE (`vssid_broker.audit.append_only`); `audit_checkpoints` lets a purge
  remove a prefix of the chain and keep it verifiable.
- `link_consents`: the person's consent to link.

Downgrade opens the sealed IDs again (same keys) and drops the chain and the consents.

Revision ID: 0008
Revises: 0011
Create Date: 2026-11-29 08:00:00.000000
"""

from collections.abc import Callable, Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

from vssid_broker.audit import append_only
from vssid_broker.audit.chain import GENESIS, entry_hash
from vssid_broker.sealing import CitizenIdKeyError, CitizenIdKeys, installed

revision: str = "0008"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 2_000
UNVERIFIED_INDEX = "ix_accounts_unverified_birth_date_name"


def _keys() -> CitizenIdKeys:
    try:
        return installed()
    except CitizenIdKeyError:
        from vssid_broker.config import Settings

        return CitizenIdKeys.from_settings(Settings())


Conversion = Literal["seal_unbound", "index", "open_unbound"]
"""Which `CitizenIdKeys` method fills a column from the source column. This revision writes
(and its downgrade reads) the format of its time, under a constant associated data: 0021
binds every value to its row (`keys reseal`), and its downgrade unbinds them again."""


def _convert(table_name: str, source: str, targets: dict[str, Conversion]) -> None:
    """Fill `targets` from `source` for every row, in batches by id (one pass, bounded memory)."""
    table = sa.table(
        table_name,
        sa.column("id", sa.BigInteger),
        *(sa.column(name, sa.String) for name in [source, *targets]),
    )
    connection = op.get_bind()
    last_id = 0
    keys: CitizenIdKeys | None = None
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c[source])
            .where(table.c[source].is_not(None), table.c.id > last_id)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        keys = keys or _keys()  # only a database with rows needs the keys
        convert: dict[str, Callable[[str], str]] = {
            name: getattr(keys, method) for name, method in targets.items()
        }
        connection.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values({name: sa.bindparam(f"new_{name}") for name in targets}),
            [
                {"row_id": row_id, **{f"new_{n}": f(value) for n, f in convert.items()}}
                for row_id, value in rows
            ],
        )
        last_id = rows[-1][0]


def upgrade() -> None:
    # --- citizen IDs sealed ------------------------------------------------------------------
    op.drop_index(UNVERIFIED_INDEX, table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("citizen_id_sealed", sa.String(80), nullable=True))
        batch.add_column(sa.Column("citizen_id_index", sa.String(64), nullable=True))
    _convert(
        "accounts", "citizen_id", {"citizen_id_sealed": "seal_unbound", "citizen_id_index": "index"}
    )
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("uq_accounts_citizen_id"), type_="unique")
        batch.drop_constraint(op.f("ck_accounts_citizen_id_12_digits"), type_="check")
        batch.drop_column("citizen_id")
        batch.create_unique_constraint(op.f("uq_accounts_citizen_id_index"), ["citizen_id_index"])
        batch.create_check_constraint(
            op.f("ck_accounts_citizen_id_sealed_with_index"),
            "(citizen_id_sealed IS NULL) = (citizen_id_index IS NULL)",
        )
    op.create_index(
        UNVERIFIED_INDEX,
        "accounts",
        ["birth_date", "name_key"],
        sqlite_where=sa.text("citizen_id_index IS NULL"),
        postgresql_where=sa.text("citizen_id_index IS NULL"),
    )

    with op.batch_alter_table("federated_links") as batch:
        batch.add_column(sa.Column("citizen_id_sealed", sa.String(80), nullable=True))
    _convert("federated_links", "citizen_id", {"citizen_id_sealed": "seal_unbound"})
    with op.batch_alter_table("federated_links") as batch:
        batch.drop_column("citizen_id")
        batch.alter_column("citizen_id_sealed", existing_type=sa.String(80), nullable=False)

    with op.batch_alter_table("review_cases") as batch:
        batch.add_column(sa.Column("citizen_id_sealed", sa.String(80), nullable=True))
        batch.add_column(sa.Column("citizen_id_index", sa.String(64), nullable=True))
    _convert(
        "review_cases",
        "citizen_id",
        {"citizen_id_sealed": "seal_unbound", "citizen_id_index": "index"},
    )
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_column("citizen_id")
        batch.alter_column("citizen_id_sealed", existing_type=sa.String(80), nullable=False)
        batch.alter_column("citizen_id_index", existing_type=sa.String(64), nullable=False)
        batch.create_index("ix_review_cases_citizen_id_index", ["citizen_id_index"])

    # --- the audit chain ---------------------------------------------------------------------
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(64), nullable=False)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", BIG_ID, nullable=False),
        sa.Column("last_entry_hash", sa.String(64), nullable=False),
        sa.Column("events_removed", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    append_only.install(op.get_bind())

    # --- consent -----------------------------------------------------------------------------
    op.create_table(
        "link_consents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(300), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("notice_version", sa.String(40), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_link_consents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_consents")),
    )
    op.create_index("ix_link_consents_account", "link_consents", ["account_id", "given_at"])


def _chain_existing_events() -> None:
    events = sa.table(
        "audit_events",
        sa.column("id", sa.BigInteger),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("event_type", sa.String),
        sa.column("outcome", sa.String),
        sa.column("account_id", sa.BigInteger),
        sa.column("actor", sa.String),
        sa.column("request_id", sa.String),
        sa.column("details", sa.JSON),
        sa.column("prev_hash", sa.String),
        sa.column("entry_hash", sa.String),
    )
    connection = op.get_bind()
    from vssid_broker.db import UTCDateTime

    as_utc = UTCDateTime().process_result_value
    prev, last_id = GENESIS, 0
    while True:
        rows = connection.execute(
            sa.select(events).where(events.c.id > last_id).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            occurred_at = as_utc(row.occurred_at, None)
            assert occurred_at is not None
            this = entry_hash(
                prev,
                occurred_at=occurred_at,
                event_type=row.event_type,
                outcome=row.outcome,
                account_id=row.account_id,
                actor=row.actor,
                request_id=row.request_id,
                details=row.details or {},
            )
            updates.append({"row_id": row.id, "new_prev": prev, "new_hash": this})
            prev = this
        connection.execute(
            sa.update(events)
            .where(events.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("new_prev"), entry_hash=sa.bindparam("new_hash")),
            updates,
        )
        last_id = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_link_consents_account", table_name="link_consents")
    op.drop_table("link_consents")

    append_only.remove(op.get_bind())
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")

    with op.batch_alter_table("review_cases") as batch:
        batch.drop_index("ix_review_cases_citizen_id_index")
        batch.add_column(sa.Column("citizen_id", sa.String(12), nullable=True))
    _convert("review_cases", "citizen_id_sealed", {"citizen_id": "open_unbound"})
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_column("citizen_id_index")
        batch.drop_column("citizen_id_sealed")
        batch.alter_column("citizen_id", existing_type=sa.String(12), nullable=False)

    with op.batch_alter_table("federated_links") as batch:
        batch.add_column(sa.Column("citizen_id", sa.String(12), nullable=True))
    _convert("federated_links", "citizen_id_sealed", {"citizen_id": "open_unbound"})
    with op.batch_alter_table("federated_links") as batch:
        batch.drop_column("citizen_id_sealed")
        batch.alter_column("citizen_id", existing_type=sa.String(12), nullable=False)

    op.drop_index(UNVERIFIED_INDEX, table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("citizen_id", sa.String(12), nullable=True))
    _convert("accounts", "citizen_id_sealed", {"citizen_id": "open_unbound"})
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("uq_accounts_citizen_id_index"), type_="unique")
        batch.drop_constraint(op.f("ck_accounts_citizen_id_sealed_with_index"), type_="check")
        batch.drop_column("citizen_id_index")
        batch.drop_column("citizen_id_sealed")
        batch.create_unique_constraint(op.f("uq_accounts_citizen_id"), ["citizen_id"])
        batch.create_check_constraint(
            op.f("ck_accounts_citizen_id_12_digits"),
            "citizen_id IS NULL OR length(citizen_id) = 12",
        )
    op.create_index(
        UNVERIFIED_INDEX,
        "accounts",
        ["birth_date", "name_key"],
        sqlite_where=sa.text("citizen_id IS NULL"),
        postgresql_where=sa.text("citizen_id IS NULL"),
    )
