"""The engine's errors: each says what is wrong and how to fix it, never personal data."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Collection, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

# A referral's reference code: the one typed value that is always safe to repeat.
REFERENCE = re.compile(r"RJK-[A-Z0-9]{4}-[A-Z0-9]{2}")
NOT_REPEATED = "(not repeated here: not a known code)"


def quoted(value: object, known: Collection[str] = ()) -> str:
    """A value the caller typed, quoted only if it is one of the `known` codes or a reference code.

    `known` is what the caller can check against (the directory's slugs, a pathway's step keys,
    a code list); `key#n` passes if `key` is known. Anything else, however code-like (a name
    typed into the wrong field, in lowercase, say), is not repeated: errors end up in terminals,
    logs, HTTP answers and the audit trail, and must never carry the person's data.
    """
    text = str(value)
    key, mark, number = text.partition("#")
    if (
        text in known
        or REFERENCE.fullmatch(text)
        or (mark and key in known and number.isdigit() and len(number) <= 3)
    ):
        return f"'{text}'"
    return NOT_REPEATED


# pydantic error types whose message is built from the schema alone (limits, patterns, the
# allowed values), never from the input: their text is shown as pydantic writes it.
_SCHEMA_ONLY = frozenset(
    {
        "missing",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "tuple_type",
        "set_type",
        "frozen_set_type",
        "iterable_type",
        "string_type",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "string_not_ascii",
        "string_unicode",
        "too_short",
        "too_long",
        "int_type",
        "int_parsing",
        "int_parsing_size",
        "int_from_float",
        "float_type",
        "float_parsing",
        "finite_number",
        "bool_type",
        "bool_parsing",
        "none_required",
        "literal_error",
        "enum",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "date_type",
        "datetime_type",
        "time_type",
        "date_past",
        "date_future",
        "datetime_past",
        "datetime_future",
        "timezone_naive",
        "timezone_aware",
        "json_type",
        "url_type",
        "url_scheme",
        "url_too_long",
        "decimal_type",
        "decimal_parsing",
    }
)
# Our own validators' messages ("Value error, ..."): written not to repeat the input, and
# checked against it all the same.
_OWN_TEXT = frozenset({"value_error", "assertion_error"})
_NOT_VALID = "is not a valid value here (see the field's description)"


def describe(
    error: ValidationError,
    model: type[BaseModel] | None = None,
    *,
    subject: str = "input",
    label: Callable[[list[str | int]], tuple[str, int] | None] | None = None,
) -> str:
    """A pydantic error as 'where: what; ...', naming only the model's own fields.

    A location names the fields of `model` (and of the models inside it) and list positions;
    an unknown key becomes "an unknown field (allowed: ...)", a dictionary key or any other
    part that is not a field is left out, and a message that could carry the input (a parse
    error's detail, a custom validator's text that contains it) is replaced by a plain one.
    Without `model`, the names in a location are taken as the schema's, but an unknown key is
    still not repeated. `subject` names the whole input ("intake"); `label` may rename the
    start of a location: it gets the location and returns (text, how many parts it replaces).
    """
    problems = []
    for detail in error.errors():
        where, unknown = _location(list(detail["loc"]), detail["type"], model)
        if unknown is not None:
            message = unknown
        elif detail["type"] in _SCHEMA_ONLY:
            message = detail["msg"]
        elif detail["type"] in _OWN_TEXT and not _repeats_input(detail["msg"], detail["input"]):
            message = detail["msg"].removeprefix("Value error, ")
        else:
            message = _NOT_VALID
        prefix = label(where) if label is not None else None
        if prefix is not None:  # an empty text drops the parts, e.g. FastAPI's leading 'body'
            text, used = prefix
            where = [text, *where[used:]] if text else where[used:]
        problems.append(f"{'.'.join(str(p) for p in where) or subject}: {message}")
    return "; ".join(problems)


def _location(
    loc: list[Any], kind: str, model: type[BaseModel] | None
) -> tuple[list[str | int], str | None]:
    """The location's parts that are field names or positions, and the text for an unknown key."""
    where: list[str | int] = []
    current = model
    for index, part in enumerate(loc):
        if isinstance(part, int):
            where.append(part)  # a list position: the model inside the list stays current
        elif current is not None and part in _field_names(current):
            where.append(part)
            current = _model_inside(_field_annotation(current, part))
        elif kind == "extra_forbidden" and index == len(loc) - 1:
            allowed = sorted(_field_names(current)) if current is not None else []
            return where, "an unknown field" + (
                f" (allowed: {', '.join(allowed)})" if allowed else ""
            )
        elif model is None:
            where.append(str(part))  # no model to check against: the schema's own names
        # else: a union member's tag or a dictionary key: not ours to repeat
    return where, None


def _field_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return names


def _field_annotation(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info.annotation
    return None


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    """The first model class in a field's type (X, X | None, list[X], Annotated[X, ...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type | types.GenericAlias) or typing.get_origin(arg) is not None:
            found = _model_inside(arg)
            if found is not None:
                return found
    return None


def _repeats_input(message: str, value: Any) -> bool:
    """True if the message contains a piece of the input of three characters or more."""
    return any(len(piece) >= 3 and piece in message for piece in _pieces(value))


def _pieces(value: Any) -> Iterator[str]:
    if isinstance(value, dict):  # its keys are field names (an unknown one is reported apart)
        for item in value.values():
            yield from _pieces(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _pieces(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


class RujukanError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1


class BadInput(RujukanError):
    """The input is malformed, unknown or not allowed; nothing was written."""

    exit_code = 2


class NotFound(BadInput):
    """A referral, step or record does not exist (or is not visible to the caller)."""


class Forbidden(BadInput):
    """The caller may not act on this step or referral."""


class IllegalTransition(BadInput):
    """The step's status does not allow this action."""


class AlreadyDone(RujukanError):
    """The action was already carried out; nothing changed."""

    exit_code = 0


class SealError(RujukanError):
    """Personal data cannot be sealed or opened with the configured key."""
