"""Every sealed value bound to its table, column and row

From this revision the broker seals every value (citizen IDs, private signing keys, staff
second factors, VNeID's ID tokens) as ``v2.<key id>.<AES-GCM>`` with its table, column and row
owner as associated data (`vssid_broker.sealing.SealedPlace`), so a value copied to another row
or table does not open there. The schema does not change.

Upgrade: nothing here. The values already stored stay readable ("unbound", while
`VSSID_OPEN_UNBOUND_SEALED_VALUES` allows) and `vssid-broker keys reseal` binds them in
resumable batches while the broker serves: it needs the key-encryption key, which the
database never holds, and 32 million rows do not belong in one migration's transaction
(docs/privacy.md, "Upgrading to bound sealed values").

Downgrade: every bound value is sealed again in the format of before (citizen IDs under the
constant associated data, secrets as JWE), in batches, under the keys of the running
configuration, so the code of revision 0020 opens them all.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

from vssid_broker.sealing import Binding, CitizenIdKeyError, CitizenIdKeys, SealedPlace, installed

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2_000


class Column(NamedTuple):
    place: SealedPlace
    key: str
    citizen_id: bool


# As they are at this revision (the models may move on; this list does not).
COLUMNS = (
    Column(SealedPlace("signing_keys", "private_jwk_encrypted", ("kid",)), "kid", False),
    Column(SealedPlace("staff_users", "totp_secret_sealed", ("id",)), "id", False),
    Column(
        SealedPlace("browser_sessions", "vneid_id_token_sealed", ("session_hash",)),
        "session_hash",
        False,
    ),
    Column(SealedPlace("accounts", "citizen_id_sealed", ("bhxh_code",)), "id", True),
    Column(SealedPlace("federated_links", "citizen_id_sealed", ("account_id",)), "id", True),
    Column(SealedPlace("review_cases", "citizen_id_sealed", ("provider", "subject")), "id", True),
)


def upgrade() -> None:
    """Nothing: `vssid-broker keys reseal` binds the stored values (see above)."""


def _citizen_id_keys() -> CitizenIdKeys:
    try:
        keys = installed()
    except CitizenIdKeyError:
        from vssid_broker.config import Settings

        keys = CitizenIdKeys.from_settings(Settings())
    return keys.for_resealing()


def _unbinder(citizen_id: bool) -> Callable[[str, Binding], str]:
    """What turns a bound value of the column's kind into the format of before."""
    if citizen_id:
        keys = _citizen_id_keys()
        return lambda sealed, binding: keys.seal_unbound(keys.open(sealed, binding))
    from vssid_broker.config import Settings
    from vssid_broker.sessions.keys import KeyEncryptionKeys, load_key_encryption_key

    settings = Settings()
    secrets = KeyEncryptionKeys.configured(settings, load_key_encryption_key(settings))
    return lambda sealed, binding: secrets.seal_unbound(secrets.open(sealed, binding))


def downgrade() -> None:
    connection = op.get_bind()
    for sealed in COLUMNS:
        place = sealed.place
        table = sa.table(
            place.table,
            *(sa.column(name) for name in dict.fromkeys([sealed.key, place.column, *place.owner])),
        )
        key, value = table.c[sealed.key], table.c[place.column]
        owners = [table.c[name] for name in place.owner]
        unbind: Callable[[str, Binding], str] | None = None  # keys only where rows need them
        last = None
        while True:
            after = () if last is None else (key > last,)
            rows = connection.execute(
                sa.select(key, value, *owners)
                .where(value.like("v2.%"), *after)
                .order_by(key)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            unbind = unbind or _unbinder(sealed.citizen_id)
            connection.execute(
                sa.update(table)
                .where(key == sa.bindparam("row_key"))
                .values({place.column: sa.bindparam("unbound")}),
                [
                    {"row_key": row[0], "unbound": unbind(row[1], place.of(*row[2:]))}
                    for row in rows
                ],
            )
            last = rows[-1][0]
