"""Paging: one page of a list (API and admin listings) and how many rows match in all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


def one_page(
    session: Session,
    query: Select[tuple[T]],
    *,
    order_by: Sequence[Any],
    page: int,
    per_page: int,
    options: Sequence[Any] = (),
) -> tuple[list[T], int]:
    """Return page ``page`` (from 1) of ``query`` in ``order_by`` order, and the match count.

    The count runs over the unordered query; the order must end in a unique column, or a row
    could show on two pages.
    """
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page).options(*options)
    )
    return list(rows), total
