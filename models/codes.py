"""The codes a person types on the command line, as plain `StrEnum`s (no pydantic, no SQLAlchemy).

`rujukan ... --help` lists them in its option texts and `rujukan steps --status` takes a
`StepStatus`; keeping them in this standard-library module lets the command line describe itself
without loading the engine (cli/main.py says why that matters). Their labels stay in
models/vocabulary.py, and models/vocabulary.py and models/step.py re-export them: code imports
them from there as before.
"""

from __future__ import annotations

from enum import StrEnum

LOCALES = ("id", "en")
DEFAULT_LOCALE = "id"


class StepStatus(StrEnum):
    """Closed-loop referral statuses of a step."""

    pending = "pending"  # waiting for earlier steps
    ready = "ready"  # the agency has been notified and must act
    accepted = "accepted"
    completed = "completed"
    declined = "declined"  # waits for the coordinator to re-route it
    cancelled = "cancelled"
    skipped = "skipped"  # its `when:` condition did not hold


class OutcomeCode(StrEnum):
    """How a completed step turned out."""

    served = "served"
    partly_served = "partly-served"
    unreachable = "unreachable"
    refused = "refused"
    referred_elsewhere = "referred-elsewhere"


class DeclineCode(StrEnum):
    """Why an agency declined a step."""

    no_capacity = "no-capacity"
    not_eligible = "not-eligible"
    not_our_mandate = "not-our-mandate"
    conflict_of_interest = "conflict-of-interest"
    other = "other"


class CancelCode(StrEnum):
    """Why a coordinator cancels a step or a referral (a code: free text could name the person)."""

    not_needed = "not-needed"
    duplicate = "duplicate"
    consent_withdrawn = "consent-withdrawn"
    victim_moved = "victim-moved"
    handled_elsewhere = "handled-elsewhere"
    entered_in_error = "entered-in-error"


class ExtensionCode(StrEnum):
    """Why an agency asks for more time."""

    victim_unavailable = "victim-unavailable"
    waiting_for_documents = "waiting-for-documents"
    waiting_for_other_agency = "waiting-for-other-agency"
    no_capacity = "no-capacity"
    other = "other"


class ReportCloseCode(StrEnum):
    """Why a coordinator closes a public report without launching a referral."""

    not_trafficking = "not-trafficking"
    duplicate = "duplicate"
    handled_elsewhere = "handled-elsewhere"
    not_enough = "not-enough-to-act"
