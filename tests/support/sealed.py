"""What a sealed column holds, as stored, with what each value is bound to: for tests that open
stored values by hand (rotations, re-sealing) or move them about (copy refusals)."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.sealing import Binding, SealedPlace


class Stored(NamedTuple):
    value: str
    binding: Binding
    extra: tuple[Any, ...]
    """The columns asked for besides (in order)."""


async def stored_values(
    session: AsyncSession, place: SealedPlace, *extra: str, order_by: str | None = None
) -> list[Stored]:
    """Every value held in `place`, in the order of `order_by` (default: the first owner)."""
    order_name = order_by or place.owner[0]
    names = list(dict.fromkeys([place.column, *place.owner, *extra, order_name]))
    rows_of = table(place.table, *(column(name) for name in names))
    value = rows_of.c[place.column]
    order = rows_of.c[order_name]
    found = await session.execute(
        select(value, *(rows_of.c[name] for name in place.owner), *(rows_of.c[e] for e in extra))
        .where(value.is_not(None))
        .order_by(order)
    )
    owners = len(place.owner)
    return [
        Stored(row[0], place.of(*row[1 : 1 + owners]), tuple(row[1 + owners :])) for row in found
    ]
