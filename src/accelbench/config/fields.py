"""Values of RunConfig fields as they arrive from YAML files and Python callers, typed.

A tuple field takes one value or a list of them (never a string split into characters); a float
field takes a whole number; a field typed `int | Literal["auto"]` also takes the word. Anything
else is a UserError that names the field the way its caller knows it (`key 'min_time'` in a
file, `min_time` in Python).
"""

from __future__ import annotations

import types
import typing

from accelbench.errors import UserError

_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _kind(hint: object) -> tuple[type, bool, bool, tuple[object, ...]]:
    """(element type, is a tuple, may be null, literal words allowed) of a field's type hint."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    many = typing.get_origin(hint) is tuple
    if many:
        hint = typing.get_args(hint)[0]
    words: tuple[object, ...] = ()
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = typing.get_args(hint)
        literal = [a for a in parts if typing.get_origin(a) is typing.Literal]
        words = tuple(w for a in literal for w in typing.get_args(a))
        hint = next(a for a in parts if a not in literal)
    return typing.cast(type, hint), many, optional, words


def _scalar(value: object, kind: type) -> object:
    """The value as `kind`, or raise TypeError."""
    if isinstance(value, bool) and kind is not bool:
        raise TypeError
    if kind is float and isinstance(value, int | float):
        return float(value)
    if not isinstance(value, kind):
        raise TypeError
    return value


def coerce(label: str, value: object, hint: object) -> object:
    """`value` typed for a field of type `hint`, or a UserError naming `label`."""
    kind, many, optional, words = _kind(hint)
    if value is None and optional:
        return None
    want = _NAMES.get(kind, kind.__name__) + "".join(f", {w}," for w in words)
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not many and isinstance(value, list | tuple):
        raise UserError(f"{label} must be {want}, got {value!r}")
    try:
        typed = tuple(v if v in words else _scalar(v, kind) for v in items)
    except TypeError:
        plural = f"{want} or a list of them" if many else want
        raise UserError(f"{label} must be {plural}, got {value!r}") from None
    return typed if many else typed[0]
