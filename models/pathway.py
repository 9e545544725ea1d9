"""Pathways as data: the YAML schema, its validation and loading."""

from __future__ import annotations

import hashlib
import json
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.condition import CONDITIONS
from models.deadline import Duration, parse_duration
from models.directory import SLUG, Directory
from models.errors import BadInput
from models.vocabulary import Words

# Case facts a step's agency may be shown; everything else stays sealed.
FACTS = (
    "name",
    "sex",
    "age_group",
    "birth_year",
    "nationality",
    "languages",
    "phone",
    "home_district",
    "address",
)
Fact = Literal[
    "name",
    "sex",
    "age_group",
    "birth_year",
    "nationality",
    "languages",
    "phone",
    "home_district",
    "address",
]


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class StepSpec(BaseModel):
    """One step of a pathway as written in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    key: str = Field(pattern=SLUG)
    title: Words
    agency: str = Field(pattern=SLUG)
    deadline: str = Field(description="ISO 8601 duration (PT24H, P7D) or 'N working days'.")
    emergency_deadline: str | None = Field(
        default=None, description="Shorter clock used when the referral is an emergency."
    )
    basis: str = Field(min_length=1, max_length=300, description="Legal or service basis.")
    depends_on: list[str] = Field(default_factory=list)
    when: str | None = Field(
        default=None, description="Name of a condition in models/condition.py."
    )
    remind_before: str | None = Field(default=None, description="Reminder lead time before due.")
    escalate_to: str | None = Field(
        default=None, pattern=SLUG, description="Escalation target; default the agency's own."
    )
    escalate_after: str = Field(default="PT24H", description="How long overdue before escalating.")
    repeat: list[str] | None = Field(
        default=None,
        description="Offsets of repeated instances (follow-ups), e.g. [P3M, P6M, P12M].",
    )
    sees: list[Fact] = Field(default_factory=list, description="Case facts this step may see.")
    template: str = Field(default="assigned", pattern=SLUG, description="Message template name.")

    _check_durations = field_validator(
        "deadline", "emergency_deadline", "remind_before", "escalate_after"
    )(_duration)

    @field_validator("repeat")
    @classmethod
    def _repeat_durations(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("repeat needs at least one offset")
            for offset in value:
                parse_duration(offset)
        return value

    def clock(self, urgency: str) -> Duration:
        """The deadline clock for a referral of this urgency."""
        if urgency == "emergency" and self.emergency_deadline:
            return parse_duration(self.emergency_deadline)
        return parse_duration(self.deadline)


class Pathway(BaseModel):
    """A victim-handling pathway: ordered steps with agencies and deadlines."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str = Field(pattern=SLUG)
    version: int = Field(ge=1)
    title: Words
    description: Words | None = None
    demo: bool = Field(
        default=False,
        description="a demonstration pathway (clocks in seconds): "
        "launched by `serve --demo`, the CLI and the API, never offered on the "
        "intake form",
    )
    kind: Literal["referral", "report"] = Field(
        default="referral",
        description="'report': the triage of public reports (models/public_report.py files them; "
        "never launched from an intake)",
    )
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _graph(self) -> Pathway:
        keys = [s.key for s in self.steps]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise ValueError(f"step key '{sorted(dupes)[0]}' is used twice")
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in keys:
                    raise ValueError(f"step '{step.key}': depends_on names unknown step '{dep}'")
            if step.when is not None and step.when not in CONDITIONS:
                raise ValueError(
                    f"step '{step.key}': unknown condition '{step.when}' "
                    f"(known: {', '.join(sorted(CONDITIONS))})"
                )
        try:
            tuple(TopologicalSorter({s.key: s.depends_on for s in self.steps}).static_order())
        except CycleError as exc:
            raise ValueError(f"steps form a cycle: {' -> '.join(exc.args[1])}") from None
        return self

    def step(self, key: str) -> StepSpec:
        """The step with this key, or BadInput."""
        for step in self.steps:
            if step.key == key:
                return step
        raise BadInput(f"pathway '{self.id}' has no step '{key}'")

    def agencies(self) -> set[str]:
        """Every agency that receives a step of this pathway."""
        return {s.agency for s in self.steps}

    def digest(self) -> str:
        """A fingerprint of the definition, to notice a changed file with an unchanged version.

        Fields left at their defaults are not part of it, so a new optional field in the schema
        does not make every stored version look changed.
        """
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def check_references(
    pathway: Pathway, directory: Directory, templates: set[str], source: str
) -> None:
    """Raise BadInput if a step names an agency or template that does not exist."""
    for step in pathway.steps:
        for slug in (step.agency, step.escalate_to):
            if slug is not None and slug not in directory:
                raise BadInput(f"{source}: step '{step.key}': unknown agency '{slug}'")
        if step.template not in templates:
            raise BadInput(f"{source}: step '{step.key}': unknown template '{step.template}'")


def load_pathway_file(path: Path, directory: Directory, templates: set[str]) -> Pathway:
    """Read and validate one pathway file; errors name the file, the step and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    try:
        pathway = Pathway.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(f"{path}: {_describe(exc, raw)}") from None
    check_references(pathway, directory, templates, str(path))
    return pathway


def load_pathways(folder: Path, directory: Directory, templates: set[str]) -> dict[str, Pathway]:
    """Every pathway in `folder`, by id; raise BadInput on the first invalid file."""
    pathways: dict[str, Pathway] = {}
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise BadInput(f"{folder}: no pathway files (*.yaml); set RUJUKAN_PATHWAYS_DIR")
    for path in files:
        pathway = load_pathway_file(path, directory, templates)
        if pathway.id in pathways:
            raise BadInput(f"{path}: pathway id '{pathway.id}' is defined twice")
        pathways[pathway.id] = pathway
    return pathways


def _describe(exc: ValidationError, raw: object) -> str:
    """Turn a pydantic error into 'step 'x': field: problem' without echoing values."""
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            steps = raw.get("steps") if isinstance(raw, dict) else None
            key = None
            if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
                key = steps[loc[1]].get("key")
            where = f"step '{key}'" if key else f"step #{loc[1] + 1}"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(": ".join(p for p in (where, field, msg) if p))
    return "; ".join(parts)
