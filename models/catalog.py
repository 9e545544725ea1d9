"""The catalog: the agency directory and pathways from their files; stored pathway versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel

from models.database import UTCDateTime
from models.directory import Agency, Directory, load_directory
from models.errors import BadInput, quoted
from models.pathway import Pathway, StepSpec, load_pathways
from models.settings import DATA_ROOT, Settings
from models.vocabulary import LOCALES

MESSAGE_TEMPLATES = DATA_ROOT / "templates" / "messages"


class PathwayRecord(SQLModel, table=True):
    """A pathway version as it was when first used; referrals keep the version they started on."""

    __tablename__ = "pathway_version"

    id: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    digest: str = Field(max_length=64)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    registered_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def template_names(folder: Path = MESSAGE_TEMPLATES) -> set[str]:
    """Message templates that exist in every locale (templates/messages/<locale>/<name>.j2)."""
    per_locale = [
        {p.name.removesuffix(".j2") for p in (folder / loc).glob("*.j2")} for loc in LOCALES
    ]
    return set.intersection(*per_locale)


@dataclass(frozen=True)
class Catalog:
    """What the engine needs to know besides the database."""

    directory: Directory
    pathways: dict[str, Pathway]
    coordinator_agency: str  # who coordinates a referral whose intake names none

    def agency(self, slug: str) -> Agency:
        """The agency with this slug."""
        return self.directory.get(slug)

    def pathway(self, pathway_id: str) -> Pathway:
        """The current definition of a pathway."""
        try:
            return self.pathways[pathway_id]
        except KeyError:
            raise BadInput(
                f"unknown pathway {quoted(pathway_id, self.pathways)} "
                f"(known: {', '.join(sorted(self.pathways))})"
            ) from None

    def hides_title(self, step_agency: str, spec_agency: str) -> bool:
        """True if a step's title is kept from others: its agency, or the agency its pathway
        gave it to (before a re-route), hides its step titles."""
        return any(
            slug in self.directory and self.agency(slug).hide_step_titles
            for slug in (step_agency, spec_agency)
        )

    def escalation_target(self, spec: StepSpec, agency: str) -> str:
        """Who hears when a step stays late: the step's own target, else that of the agency that
        holds it now (a re-routed step escalates along its new agency), else that agency."""
        return spec.escalate_to or self.agency(agency).escalation_target or agency


def load_catalog(settings: Settings) -> Catalog:
    """Load and validate the directory and every pathway file named by the settings."""
    directory = load_directory(settings.agencies_file)
    pathways = load_pathways(settings.pathways_dir, directory, template_names())
    return Catalog(
        directory=directory, pathways=pathways, coordinator_agency=settings.coordinator_agency
    )


def register_pathways(session: Session, catalog: Catalog, now: datetime) -> list[str]:
    """Store every pathway version not stored yet; refuse a changed file with an unchanged one.

    Checked once per transaction and catalog: a batch of a thousand launches checks once.
    """
    checked = (session.get_transaction(), id(catalog))
    if session.info.get("pathways_checked") == checked and checked[0] is not None:
        return []
    added = []
    for pathway in catalog.pathways.values():
        stored = session.get(PathwayRecord, (pathway.id, pathway.version))
        if stored is None:
            session.add(
                PathwayRecord(
                    id=pathway.id,
                    version=pathway.version,
                    digest=pathway.digest(),
                    definition=pathway.model_dump_json(),
                    registered_at=now,
                )
            )
            added.append(f"{pathway.id} v{pathway.version}")
        elif stored.digest != pathway.digest():
            raise BadInput(
                f"pathway '{pathway.id}' version {pathway.version} changed since it was first "
                "used: raise its `version` so running referrals keep the one they started on"
            )
    session.flush()
    session.info["pathways_checked"] = (session.get_transaction(), id(catalog))
    return added


_cache: dict[tuple[str, int], Pathway] = {}


def stored_pathway(session: Session, pathway_id: str, version: int) -> Pathway:
    """The pathway version a referral started on."""
    key = (pathway_id, version)
    if key not in _cache:
        record = session.get(PathwayRecord, key)
        if record is None:
            raise BadInput(
                f"pathway '{pathway_id}' version {version} is not registered; run `rujukan init`"
            )
        _cache[key] = Pathway.model_validate(json.loads(record.definition))
    return _cache[key]
