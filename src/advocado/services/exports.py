"""CSV of every console list: the rows of a page's list, flattened to columns, written by the one
CSV writer (services.dashboard.csv_text: UTF-8 with a BOM so Excel shows Chinese; cells a
spreadsheet would run as a formula, starting with = + - @, get a leading ').

A list is whatever its page's selector returns (ORM rows, dataclasses, dicts, nested one level
as in {"referral": Referral, "other": "c-1"}); `table` turns it into a dashboard Panel."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from advocado.services.dashboard import Panel, csv_rows, csv_text

# Never exported, whatever the list: secrets and raw bytes.
HIDDEN = ("password", "secret", "hash", "token")


def _hidden(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return any(word in leaf for word in HIDDEN)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(_structure(value), ensure_ascii=False, default=str, sort_keys=True)
    return value


def _structure(value: Any) -> Any:
    """Rows inside a cell (a message's events, a referral's rewards) as plain JSON objects."""
    if _is_record(value):
        return {k: _structure(v) for k, v in _fields(value).items() if not _hidden(k)}
    if isinstance(value, Mapping):
        return {str(k): _structure(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_structure(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _is_record(value: Any) -> bool:
    return hasattr(value, "__table__") or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def _fields(item: Any) -> dict[str, Any]:
    if hasattr(item, "__table__"):  # an ORM row: its columns
        return {c.key: getattr(item, c.key) for c in item.__mapper__.column_attrs}
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    if isinstance(item, Mapping):
        return dict(item)
    return {"value": item}


def flatten(item: Any) -> dict[str, Any]:
    """One row: scalar fields as they are; an ORM row, dataclass or dict inside it as
    `outer.inner` columns; lists of scalars joined with ;, other structures as JSON."""
    row: dict[str, Any] = {}
    for name, value in _fields(item).items():
        if _is_record(value):
            for inner, inner_value in _fields(value).items():
                row[f"{name}.{inner}"] = _plain(inner_value)
        else:
            row[name] = _plain(value)
    return {k: v for k, v in row.items() if not _hidden(k)}


def table(name: str, items: Iterable[Any], columns: list[str] | None = None) -> Panel:
    """The list as a Panel: `columns` if given, else every column of the rows in first-seen
    order."""
    rows = [flatten(item) for item in items]
    if columns is None:
        columns = []
        for row in rows:
            columns += [c for c in row if c not in columns]
    return Panel(name, columns, rows)


def csv_pages(
    name: str, first: list[dict[str, Any]], more: Iterable[list[dict[str, Any]]]
) -> Iterator[str]:
    """CSV of a list read page by page (rows already flattened): the columns of the first
    page, in first-seen order, then every page's rows as they come."""
    columns: list[str] = []
    for row in first:
        columns += [c for c in row if c not in columns]
    return csv_rows(columns, itertools.chain(first, itertools.chain.from_iterable(more)))


def csv_of(name: str, items: Iterable[Any], columns: list[str] | None = None) -> Iterator[str]:
    return csv_text(table(name, items, columns))


__all__ = ["csv_of", "csv_pages", "csv_text", "flatten", "table"]
