"""The intake: what a coordinator records to launch a referral, validated without echoing it."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.directory import SLUG
from models.errors import BadInput, describe
from models.referral import Urgency
from models.vocabulary import CaseSourceCode, ExploitationCode, RecruitmentCode

_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)


def _plain_text(value: str) -> str:
    """Refuse control, format (bidi) and private-use characters; they hide or reorder text."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs"):
            raise ValueError("contains control or invisible formatting characters; remove them")
    return value


def _single_script(value: str) -> str:
    """Refuse a word that mixes Latin with Cyrillic or Greek letters (a look-alike spoof)."""
    scripts = set()
    for char in value:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts.add(next((s for s in ("CYRILLIC", "GREEK") if name.startswith(s)), "OTHER"))
    if "OTHER" in scripts and scripts & {"CYRILLIC", "GREEK"}:
        raise ValueError("mixes Latin letters with look-alike Cyrillic or Greek letters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain_text)]
Name = Annotated[Text, AfterValidator(_single_script)]
Slug = Annotated[str, Field(pattern=SLUG)]
ActorId = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[\w.@-]+$")]


def _phone(value: str) -> str:
    if not re.fullmatch(r"\+?[0-9 ()-]{6,24}", value):
        raise ValueError("is not a phone number (digits, spaces, +, - and parentheses)")
    return value


class PersonIn(BaseModel):
    """The victim's identifying facts; sealed at rest and shown only to steps that need them."""

    model_config = _STRICT

    name: Name
    sex: Literal["F", "M", "X"]
    birth_year: int = Field(ge=1900)
    nationality: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2, e.g. ID")
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=list, max_length=10
    )
    phone: Annotated[str, AfterValidator(_phone)] | None = None
    home_district: Text | None = None
    address: (
        Annotated[str, Field(min_length=1, max_length=400), AfterValidator(_plain_text)] | None
    ) = None

    @model_validator(mode="after")
    def _birth_year_not_future(self) -> PersonIn:
        if self.birth_year > date.today().year:
            raise ValueError("birth_year is in the future")
        return self


class ConsentOverride(BaseModel):
    """An authorised coordinator's decision to refer without consent, and why."""

    model_config = _STRICT

    by: ActorId
    reason: Text


class ConsentIn(BaseModel):
    """Consent to share with each receiving agency, or an override."""

    model_config = _STRICT

    agencies: list[Slug] = Field(default_factory=list)
    recorded_by: ActorId | None = None
    override: ConsentOverride | None = None

    @model_validator(mode="after")
    def _one_basis(self) -> ConsentIn:
        if self.override is None and not self.agencies:
            raise ValueError(
                "consent needs either 'agencies' (with 'recorded_by') or an 'override' with 'by' "
                "and 'reason'"
            )
        if self.override is None and not self.recorded_by:
            raise ValueError("consent.recorded_by is required: who recorded the victim's consent")
        return self


class CaseOptions(BaseModel):
    """Facts that decide which steps apply (see `when:` in the pathway files)."""

    model_config = _STRICT

    wants_prosecution: bool = True
    needs_shelter: bool = True
    claims_restitution: bool = True
    wants_return: bool = True


# Where the exploitation happened: an ISO 3166 country (MY) or an ISO 3166-2 province (ID-BE),
# so that the field can hold a place for statistics and never an address.
PLACE = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"


class CaseFacts(BaseModel):
    """Statistical facts of the case, all optional and coded: reported, never in a message."""

    model_config = _STRICT

    exploitation: ExploitationCode | None = None
    source: CaseSourceCode | None = Field(default=None, description="how the case came in")
    recruitment: RecruitmentCode | None = None
    place: str | None = Field(
        default=None,
        pattern=PLACE,
        description="country (ISO 3166, e.g. MY) or province (ISO 3166-2, e.g. ID-BE) where it "
        "happened; never an address",
    )

    def columns(self) -> dict[str, str | None]:
        """The facts as the referral table stores them."""
        return {
            "exploitation": self.exploitation.value if self.exploitation else None,
            "case_source": self.source.value if self.source else None,
            "recruitment": self.recruitment.value if self.recruitment else None,
            "place": self.place,
        }


class Intake(BaseModel):
    """A referral to launch: pathway, urgency, person, consent, case options and case facts."""

    model_config = _STRICT

    pathway: Slug
    urgency: Urgency = Urgency.regular
    person: PersonIn
    consent: ConsentIn
    case: CaseOptions = Field(default_factory=CaseOptions)
    facts: CaseFacts = Field(default_factory=CaseFacts)
    coordinator_agency: Slug | None = None

    @property
    def coordinator(self) -> str:
        """Who launches it: the consent's recorder or the overriding coordinator."""
        return self.consent.override.by if self.consent.override else str(self.consent.recorded_by)


def age_group(birth_year: int, today: date) -> str:
    """A coarse age band that identifies nobody: child (<18) or adult, with a decade."""
    age = today.year - birth_year
    if age < 18:
        return "anak (<18)" if age >= 0 else "?"
    return f"dewasa ({age // 10 * 10}-{age // 10 * 10 + 9})"


def read_intakes(text: str, where: str, *, lines: bool = False) -> list[Intake]:
    """The intakes in `text`: one JSON document, or with `lines` one per line (JSON Lines).

    Errors start with `where` (a label such as "--intake", never the file's name, which may be
    the person's) and the line, and name fields and problems only, never what was typed.
    """
    if not lines:
        return [_read_intake(text, where)]
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise BadInput(f"{where}: no intakes in the file")
    return [_read_intake(line, f"{where} line {n}") for n, line in numbered]


def read_intake_file(path: Path, where: str, *, lines: bool = False) -> list[Intake]:
    """The intakes of a file (JSON, or JSON Lines with `lines`); see `read_intakes`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{where}: file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{where}: is a folder, not a file") from None
    except UnicodeDecodeError:
        raise BadInput(f"{where}: not UTF-8 text") from None
    return read_intakes(text, where, lines=lines)


def _read_intake(text: str, where: str) -> Intake:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError):  # a number too long to read, nesting too deep
        raise BadInput(f"{where}: not an intake (a number or nesting beyond limits)") from None
    return validate_intake(data, where)


def validate_intake(data: object, where: str | None = None) -> Intake:
    """An intake from parsed JSON (a form, an API body), or BadInput naming fields only."""
    try:
        return Intake.model_validate(data)
    except ValidationError as exc:
        problems = describe(exc, Intake, subject="intake")
        raise BadInput(f"{where}: {problems}" if where else problems) from None
