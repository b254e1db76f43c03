"""The valid part of an invalid scenario file, so cross-references are checked too.

``flexlab validate`` reports every problem of a file at once. Shape errors come from
pydantic; the cross-reference checks need a model, so a file with shape errors is
rebuilt from what does validate: each field on its own, and list items one by one
(an invalid item is left out). ``IndexMaps`` remember where the kept items were in
the file, so a problem found in the rebuilt model points at the right line.
"""

from __future__ import annotations

import types
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from harness.scenario.checks import Loc

M = TypeVar("M", bound=BaseModel)
#: per list path in the file (``("steps",)``, ``("expect", "machines")``): the file index
#: of each kept item, in order
IndexMaps = dict[Loc, list[int]]


def salvage(cls: type[M], data: dict[str, Any], at: Loc = ()) -> tuple[M, IndexMaps]:
    """``cls`` built without validation from the fields (and list items) of ``data`` that
    validate; missing required lists are empty. Nothing invalid is kept."""
    values: dict[str, Any] = {}
    maps: IndexMaps = {}
    for name, field in cls.model_fields.items():
        key = field.alias or name
        annotation: Any = field.annotation
        if key not in data:
            if field.is_required() and get_origin(annotation) is list:
                values[name] = []
            continue
        raw = data[key]
        try:
            values[name] = TypeAdapter(annotation).validate_python(raw)
            continue
        except ValidationError:
            pass
        if get_origin(annotation) is list and isinstance(raw, list):
            adapter = TypeAdapter(get_args(annotation)[0])
            kept, where = [], []
            for index, item in enumerate(raw):
                try:
                    kept.append(adapter.validate_python(item))
                except ValidationError:
                    continue
                where.append(index)
            values[name] = kept
            maps[(*at, key)] = where
        elif _model(annotation) is not None and isinstance(raw, dict):
            model = _model(annotation)
            assert model is not None
            values[name], inner = salvage(model, raw, (*at, key))
            maps.update(inner)
        elif field.is_required() and get_origin(annotation) is list:
            values[name] = []
    return cls.model_construct(**values), maps


def _model(annotation: Any) -> type[BaseModel] | None:
    """The model class of ``X`` or ``X | None``, else None."""
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) \
        else (annotation,)
    for option in options:
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def file_loc(loc: Loc, maps: IndexMaps) -> Loc:
    """``loc`` in the rebuilt model → the same value's path in the file."""
    for prefix, where in maps.items():
        n = len(prefix)
        index = loc[n] if loc[:n] == prefix and len(loc) > n else None
        if isinstance(index, int) and index < len(where):
            return (*prefix, where[index], *loc[n + 1:])
    return loc
