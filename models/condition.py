"""Conditions a pathway step may name in `when:`; each reads the referral's case options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Options = Mapping[str, Any]


def prosecution_wanted(options: Options) -> bool:
    """The victim agrees to report and to take part in criminal proceedings."""
    return bool(options.get("wants_prosecution", True))


def needs_shelter(options: Options) -> bool:
    """The victim has no safe place to stay."""
    return bool(options.get("needs_shelter", True))


def restitution_claimed(options: Options) -> bool:
    """The victim claims restitution from the offender."""
    return bool(options.get("claims_restitution", True))


def wants_return(options: Options) -> bool:
    """The victim wants to go back to the home area (or home country)."""
    return bool(options.get("wants_return", True))


CONDITIONS: dict[str, Callable[[Options], bool]] = {
    fn.__name__: fn for fn in (prosecution_wanted, needs_shelter, restitution_claimed, wants_return)
}
