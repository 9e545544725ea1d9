"""The agency directory: who the agencies are, their time zone, locale and escalation target."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import BadInput, quoted
from models.vocabulary import Words

SLUG = r"^[a-z0-9][a-z0-9-]{0,39}$"
Locale = Literal["id", "en"]


class Agency(BaseModel):
    """One agency of the district."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    slug: str = Field(pattern=SLUG, description="Short name, also the Apprise tag of its channels.")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=60, description="e.g. police, health, ngo")
    also_serves: list[str] = Field(
        default_factory=list,
        description="Other kinds of service it can take on (e.g. an NGO that also gives health "
        "care): offered first when a step of such a kind is re-routed.",
    )
    timezone: str = "Asia/Jakarta"
    locale: Locale = "id"
    escalation_target: str | None = Field(default=None, pattern=SLUG)
    hide_step_titles: bool = Field(
        default=False,
        description="Say 'a step' instead of the step's title in messages (the title is "
        "sensitive).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use e.g. Asia/Jakarta)") from None
        return value


class Hotline(BaseModel):
    """A number the public page names for help now (e.g. SAPA 129, police 110)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Words
    number: str = Field(pattern=r"^[0-9+ ()-]{2,24}$")
    note: Words | None = None


DEFAULT_HOTLINES = [
    Hotline(
        name=Words(id="SAPA 129 (KemenPPPA)", en="SAPA 129 (Ministry of Women and Children)"),
        number="129",
        note=Words(
            id="Telepon 129 atau WhatsApp 08111-129-129", en="Call 129 or WhatsApp 08111-129-129"
        ),
    ),
    Hotline(
        name=Words(id="Polisi (darurat)", en="Police (emergency)"),
        number="110",
        note=Words(id="Jika ada orang dalam bahaya sekarang", en="If someone is in danger now"),
    ),
]


class Directory(BaseModel):
    """All agencies, by slug, and the hotlines the public page names."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    district: str
    agencies: list[Agency]
    hotlines: list[Hotline] = Field(default_factory=lambda: list(DEFAULT_HOTLINES))

    def get(self, slug: str) -> Agency:
        """The agency with this slug, or BadInput naming the slug."""
        for agency in self.agencies:
            if agency.slug == slug:
                return agency
        raise BadInput(f"unknown agency {quoted(slug)}: see `rujukan agencies list`")

    def stand_ins(self, slug: str) -> list[Agency]:
        """The agencies that can take over a step of `slug`'s: the same kind, or serving it."""
        kind = self.get(slug).kind
        return [
            a for a in self.agencies if a.slug != slug and (a.kind == kind or kind in a.also_serves)
        ]

    def __contains__(self, slug: object) -> bool:
        return any(a.slug == slug for a in self.agencies)


def load_directory(path: Path) -> Directory:
    """Read and validate an agency directory file; errors name the file and the agency."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: agency directory not found (set RUJUKAN_AGENCIES_FILE)") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: expected a mapping with 'district' and 'agencies'")
    problems: list[str] = []
    for index, entry in enumerate(raw.get("agencies") or []):
        label = entry.get("slug", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        try:
            Agency.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"agency '{label}': {where}: {err['msg']}")
    if problems:
        raise BadInput(f"{path}: " + "; ".join(problems))
    try:
        directory = Directory.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(f"{path}: {_first_error(exc)}") from None
    seen: set[str] = set()
    for agency in directory.agencies:
        if agency.slug in seen:
            raise BadInput(f"{path}: agency '{agency.slug}' is listed twice")
        seen.add(agency.slug)
    for agency in directory.agencies:
        if agency.escalation_target and agency.escalation_target not in seen:
            raise BadInput(
                f"{path}: agency '{agency.slug}' escalates to unknown agency "
                f"'{agency.escalation_target}'"
            )
    return directory


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
