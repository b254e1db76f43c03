"""The valid part of an invalid scenario file, so cross-references are checked too.

``flexlab validate`` reports every problem of a file at once. Shape errors come from
pydantic; the cross-reference checks need a model, so a file with shape errors is
rebuilt from what does validate: each field on its own, and list items one by one.
An invalid item is rebuilt the same way from its own valid fields, so a machine with a
bad firmware still has its segment checked; it is left out only when a field it
cannot do without (its name, a step's time) is itself invalid. ``IndexMaps`` remember
where the kept items were in the file, so a problem found in the rebuilt model points
at the right line.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from harness.scenario.checks import Loc

M = TypeVar("M", bound=BaseModel)
#: per list path in the rebuilt model (``("steps",)``, ``("machines", 0, "macs")``): the
#: file index of each kept item, in order
IndexMaps = dict[Loc, list[int]]


def salvage(cls: type[M], data: dict[str, Any], at: Loc = ()) -> tuple[M, IndexMaps]:
    """``cls`` built without validation from the fields (and list items) of ``data`` that
    validate on their own (type and constraints; a model's validators, such as the
    firmware name's, are not run again: no cross-reference reads those values); missing
    required lists are empty."""
    values, maps = _fields(cls, data, at)
    return cls.model_construct(**values), maps


def _fields(cls: type[BaseModel], data: dict[str, Any], at: Loc) -> tuple[dict[str, Any],
                                                                          IndexMaps]:
    """The valid fields of ``data`` for ``cls`` (by field name), and the index maps of
    the lists among them; ``at`` is their model's path in the rebuilt model."""
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
        try:  # the field's constraints (a name's pattern, a list's length) apply too
            values[name] = TypeAdapter(Annotated[annotation, field]).validate_python(raw)
            continue
        except ValidationError:
            pass
        if get_origin(annotation) is list and isinstance(raw, list):
            item_type = get_args(annotation)[0]
            adapter = TypeAdapter(item_type)
            kept: list[Any] = []
            where: list[int] = []
            for index, item in enumerate(raw):
                try:
                    kept.append(adapter.validate_python(item))
                except ValidationError:
                    partial = _partial(item_type, item, (*at, key, len(kept)), maps)
                    if partial is None:
                        continue
                    kept.append(partial)
                where.append(index)
            values[name] = kept
            maps[(*at, key)] = where
        elif (partial := _partial(annotation, raw, (*at, key), maps)) is not None:
            values[name] = partial
        elif field.is_required() and get_origin(annotation) is list:
            values[name] = []
    return values, maps


def _partial(annotation: Any, raw: Any, at: Loc, maps: IndexMaps) -> BaseModel | None:
    """An invalid ``raw`` model value rebuilt from its valid fields, or None when it is
    no model, or a field it requires is missing or invalid (lists excepted: empty)."""
    model = _model(annotation, raw)
    if model is None or not isinstance(raw, dict):
        return None
    values, inner = _fields(model, raw, at)
    if any(f.is_required() and name not in values for name, f in model.model_fields.items()):
        return None
    maps.update(inner)
    return model.model_construct(**values)


def _model(annotation: Any, raw: Any) -> type[BaseModel] | None:
    """The model class ``raw`` is meant to be: of ``X`` or ``X | None``, or the member of
    a discriminated union its tag (a step's ``action``) names; else None."""
    tag: str | None = None
    if get_origin(annotation) is Annotated:
        annotation, *meta = get_args(annotation)
        tag = next((m.discriminator for m in meta
                    if isinstance(m, FieldInfo) and isinstance(m.discriminator, str)), None)
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) \
        else (annotation,)
    models = [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
    if tag is None:
        return models[0] if models else None
    value = raw.get(tag) if isinstance(raw, dict) else None
    return next((m for m in models
                 if value in get_args(m.model_fields[tag].annotation)), None)


def file_loc(loc: Loc, maps: IndexMaps) -> Loc:
    """``loc`` in the rebuilt model → the same value's path in the file: each list index
    whose list lost items on the way is mapped back to the item's index in the file."""
    out = list(loc)
    for n, index in enumerate(loc):
        where = maps.get(loc[:n])
        if where is not None and isinstance(index, int) and index < len(where):
            out[n] = where[index]
    return tuple(out)
