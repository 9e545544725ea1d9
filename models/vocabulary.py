"""The vocabulary: every code the project stores or shows, and its words in Indonesian and English.

A code is a member of a `StrEnum` (it equals its stored string); its labels sit in the table of
its enum below. Adding a code means adding the member and its label here; tests/core/
test_vocabulary.py fails if a label is missing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

# The locales and the codes a command line takes live in models/codes.py (light enough for
# `rujukan --help`); they are imported from here as before.
from models.codes import DEFAULT_LOCALE as DEFAULT_LOCALE
from models.codes import LOCALES as LOCALES
from models.codes import (
    CancelCode,
    DeclineCode,
    ExtensionCode,
    OutcomeCode,
    ReportCloseCode,
)
from models.referral import ReferralStatus
from models.step import StepStatus


class Words(BaseModel):
    """A text in Bahasa Indonesia and English."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)

    def text(self, locale: str) -> str:
        """The text in `locale` ('id' or 'en')."""
        return self.en if locale == "en" else self.id


class ExploitationCode(StrEnum):
    """The form of exploitation a case concerns (a statistical fact, never identifying)."""

    labour = "labour"
    sexual = "sexual"
    forced_marriage = "forced-marriage"
    online_scam = "online-scam"
    organ_removal = "organ-removal"
    other = "other"


class CaseSourceCode(StrEnum):
    """How a case came to the agencies (a statistical fact)."""

    police_operation = "police-operation"
    immigration_screening = "immigration-screening"
    returnee_at_port = "returnee-at-port"
    public_report = "public-report"
    ngo = "ngo"
    hotline = "hotline"
    other = "other"


class RecruitmentCode(StrEnum):
    """How the victim was recruited (a statistical fact)."""

    online = "online"
    broker = "broker"
    family_or_acquaintance = "family-or-acquaintance"
    placement_agency = "placement-agency"
    other = "other"
    unknown = "unknown"


class AtRiskCode(StrEnum):
    """Who may be at risk, as a public report says (a statistical fact)."""

    adults = "adults"
    children = "children"
    both = "adults-and-children"
    unknown = "unknown"


# The second value of an audit action says whether it belongs in a referral's history in Prefect:
# views of personal data, notes, access grants and refusals stay out of it.
HISTORY = True
NOT_HISTORY = False


class AuditAction(StrEnum):
    """What an audit entry records; the stored `action` is the member's value."""

    in_history: bool

    def __new__(cls, value: str, in_history: bool) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.in_history = in_history
        return member

    launched = "launched", HISTORY
    ready = "ready", HISTORY
    accepted = "accepted", HISTORY
    declined = "declined", HISTORY
    completed = "completed", HISTORY
    skipped = "skipped", HISTORY
    rerouted = "rerouted", HISTORY
    extension_requested = "extension-requested", HISTORY
    extension_approved = "extension-approved", HISTORY
    extension_refused = "extension-refused", HISTORY
    step_cancelled = "step-cancelled", HISTORY
    referral_cancelled = "referral-cancelled", HISTORY
    referral_completed = "referral-completed", HISTORY
    overdue = "overdue", HISTORY
    escalated = "escalated", HISTORY
    consent_recorded = "consent-recorded", NOT_HISTORY
    person_viewed = "person-viewed", NOT_HISTORY
    notes_viewed = "notes-viewed", NOT_HISTORY
    note_added = "note-added", NOT_HISTORY
    refused = "refused", NOT_HISTORY
    signed_in = "signed-in", NOT_HISTORY
    access_issued = "access-issued", NOT_HISTORY
    access_revoked = "access-revoked", NOT_HISTORY
    links_withdrawn = "links-withdrawn", NOT_HISTORY
    link_issued = "link-issued", NOT_HISTORY
    report_filed = "report-filed", HISTORY
    report_asked = "report-asked", HISTORY
    report_answered = "report-answered", HISTORY
    report_forwarded = "report-forwarded", HISTORY
    report_launched = "report-launched", HISTORY
    report_closed = "report-closed", HISTORY
    report_viewed = "report-viewed", NOT_HISTORY
    cases_exported = "cases-exported", NOT_HISTORY
    key_rotated = "key-rotated", NOT_HISTORY
    data_resealed = "data-resealed", NOT_HISTORY

    @classmethod
    def history(cls) -> list[AuditAction]:
        """The actions that make a referral's history in Prefect."""
        return [action for action in cls if action.in_history]


# The case options of an intake (models/intake.py's CaseOptions), keyed by field name.
CASE_OPTION_LABELS: dict[str, Words] = {
    "wants_prosecution": Words(id="Korban ingin proses hukum", en="The victim wants prosecution"),
    "needs_shelter": Words(id="Korban butuh rumah aman", en="The victim needs shelter"),
    "claims_restitution": Words(id="Korban menuntut restitusi", en="The victim claims restitution"),
    "wants_return": Words(
        id="Korban ingin pulang ke daerah asal", en="The victim wants to return home"
    ),
}

LABELS: dict[type[StrEnum], dict[StrEnum, Words]] = {
    OutcomeCode: {
        OutcomeCode.served: Words(id="Terlayani", en="Served"),
        OutcomeCode.partly_served: Words(id="Terlayani sebagian", en="Partly served"),
        OutcomeCode.unreachable: Words(id="Korban tidak dapat dihubungi", en="Victim unreachable"),
        OutcomeCode.refused: Words(id="Korban menolak layanan", en="Victim refused the service"),
        OutcomeCode.referred_elsewhere: Words(
            id="Dirujuk ke layanan lain", en="Referred elsewhere"
        ),
    },
    DeclineCode: {
        DeclineCode.no_capacity: Words(id="Tidak ada kapasitas", en="No capacity"),
        DeclineCode.not_eligible: Words(id="Tidak memenuhi syarat", en="Not eligible"),
        DeclineCode.not_our_mandate: Words(id="Bukan kewenangan kami", en="Not our mandate"),
        DeclineCode.conflict_of_interest: Words(
            id="Konflik kepentingan", en="Conflict of interest"
        ),
        DeclineCode.other: Words(id="Lainnya", en="Other"),
    },
    ExtensionCode: {
        ExtensionCode.victim_unavailable: Words(
            id="Korban belum dapat ditemui", en="Victim not available yet"
        ),
        ExtensionCode.waiting_for_documents: Words(
            id="Menunggu dokumen", en="Waiting for documents"
        ),
        ExtensionCode.waiting_for_other_agency: Words(
            id="Menunggu instansi lain", en="Waiting for another agency"
        ),
        ExtensionCode.no_capacity: Words(id="Tidak ada kapasitas", en="No capacity"),
        ExtensionCode.other: Words(id="Lainnya", en="Other"),
    },
    CancelCode: {
        CancelCode.not_needed: Words(id="Tidak diperlukan lagi", en="No longer needed"),
        CancelCode.duplicate: Words(id="Duplikat", en="Duplicate"),
        CancelCode.consent_withdrawn: Words(
            id="Korban menarik persetujuan", en="Consent withdrawn"
        ),
        CancelCode.victim_moved: Words(
            id="Korban pindah/keluar wilayah", en="The victim moved away"
        ),
        CancelCode.handled_elsewhere: Words(id="Ditangani di tempat lain", en="Handled elsewhere"),
        CancelCode.entered_in_error: Words(id="Salah input", en="Entered in error"),
    },
    ExploitationCode: {
        ExploitationCode.labour: Words(id="Eksploitasi kerja", en="Labour exploitation"),
        ExploitationCode.sexual: Words(id="Eksploitasi seksual", en="Sexual exploitation"),
        ExploitationCode.forced_marriage: Words(id="Kawin paksa", en="Forced marriage"),
        ExploitationCode.online_scam: Words(
            id="Dipaksa bekerja di penipuan daring", en="Forced work in an online scam compound"
        ),
        ExploitationCode.organ_removal: Words(id="Pengambilan organ", en="Organ removal"),
        ExploitationCode.other: Words(id="Lainnya", en="Other"),
    },
    CaseSourceCode: {
        CaseSourceCode.police_operation: Words(id="Operasi kepolisian", en="Police operation"),
        CaseSourceCode.immigration_screening: Words(
            id="Pemeriksaan imigrasi", en="Immigration screening"
        ),
        CaseSourceCode.returnee_at_port: Words(
            id="Kepulangan di pelabuhan/bandara", en="Returnee at a port or airport"
        ),
        CaseSourceCode.public_report: Words(id="Laporan masyarakat", en="Public report"),
        CaseSourceCode.ngo: Words(id="Lembaga masyarakat (LSM)", en="NGO"),
        CaseSourceCode.hotline: Words(id="Layanan pengaduan (hotline)", en="Hotline"),
        CaseSourceCode.other: Words(id="Lainnya", en="Other"),
    },
    RecruitmentCode: {
        RecruitmentCode.online: Words(
            id="Lewat internet/media sosial", en="Online or social media"
        ),
        RecruitmentCode.broker: Words(id="Calo/sponsor", en="Broker or sponsor"),
        RecruitmentCode.family_or_acquaintance: Words(
            id="Keluarga atau kenalan", en="Family or acquaintance"
        ),
        RecruitmentCode.placement_agency: Words(
            id="Perusahaan penempatan (P3MI)", en="Placement agency"
        ),
        RecruitmentCode.other: Words(id="Lainnya", en="Other"),
        RecruitmentCode.unknown: Words(id="Tidak diketahui", en="Unknown"),
    },
    ReportCloseCode: {
        ReportCloseCode.not_trafficking: Words(id="Bukan perdagangan orang", en="Not trafficking"),
        ReportCloseCode.duplicate: Words(id="Laporan ganda", en="Duplicate"),
        ReportCloseCode.handled_elsewhere: Words(
            id="Sudah ditangani pihak lain", en="Handled elsewhere"
        ),
        ReportCloseCode.not_enough: Words(
            id="Keterangan belum cukup untuk ditindaklanjuti", en="Not enough to act on"
        ),
    },
    AtRiskCode: {
        AtRiskCode.adults: Words(id="Orang dewasa", en="Adults"),
        AtRiskCode.children: Words(id="Anak-anak", en="Children"),
        AtRiskCode.both: Words(id="Dewasa dan anak-anak", en="Adults and children"),
        AtRiskCode.unknown: Words(id="Tidak tahu", en="Don't know"),
    },
    StepStatus: {
        StepStatus.pending: Words(id="Menunggu", en="Waiting"),
        StepStatus.ready: Words(id="Baru", en="New"),
        StepStatus.accepted: Words(id="Diterima", en="Accepted"),
        StepStatus.completed: Words(id="Selesai", en="Completed"),
        StepStatus.declined: Words(id="Ditolak", en="Declined"),
        StepStatus.cancelled: Words(id="Dibatalkan", en="Cancelled"),
        StepStatus.skipped: Words(id="Dilewati", en="Skipped"),
    },
    ReferralStatus: {
        ReferralStatus.active: Words(id="Berjalan", en="Active"),
        ReferralStatus.completed: Words(id="Selesai", en="Completed"),
        ReferralStatus.cancelled: Words(id="Dibatalkan", en="Cancelled"),
    },
    AuditAction: {
        AuditAction.launched: Words(id="rujukan dimulai", en="referral launched"),
        AuditAction.ready: Words(
            id="tugas siap, instansi diberi tahu", en="step ready, agency told"
        ),
        AuditAction.accepted: Words(id="diterima", en="accepted"),
        AuditAction.declined: Words(id="ditolak", en="declined"),
        AuditAction.completed: Words(id="selesai", en="completed"),
        AuditAction.skipped: Words(id="dilewati (kondisi)", en="skipped (condition)"),
        AuditAction.rerouted: Words(id="dialihkan", en="re-routed"),
        AuditAction.extension_requested: Words(id="perpanjangan diminta", en="extension requested"),
        AuditAction.extension_approved: Words(id="perpanjangan disetujui", en="extension approved"),
        AuditAction.extension_refused: Words(id="perpanjangan ditolak", en="extension refused"),
        AuditAction.step_cancelled: Words(id="tugas dibatalkan", en="step cancelled"),
        AuditAction.referral_cancelled: Words(id="rujukan ditutup", en="referral cancelled"),
        AuditAction.referral_completed: Words(id="rujukan selesai", en="referral completed"),
        AuditAction.overdue: Words(id="terlambat", en="overdue"),
        AuditAction.escalated: Words(id="dieskalasi", en="escalated"),
        AuditAction.consent_recorded: Words(id="persetujuan dicatat", en="consent recorded"),
        AuditAction.person_viewed: Words(id="data korban dilihat", en="person's data viewed"),
        AuditAction.notes_viewed: Words(id="catatan dilihat", en="notes viewed"),
        AuditAction.note_added: Words(id="catatan ditambahkan", en="note added"),
        AuditAction.refused: Words(id="DITOLAK SISTEM", en="REFUSED"),
        AuditAction.signed_in: Words(id="masuk", en="signed in"),
        AuditAction.access_issued: Words(id="akses diberikan", en="access issued"),
        AuditAction.access_revoked: Words(id="akses dicabut", en="access revoked"),
        AuditAction.links_withdrawn: Words(id="tautan ditarik", en="links withdrawn"),
        AuditAction.link_issued: Words(id="tautan diberikan", en="link issued"),
        AuditAction.report_filed: Words(id="laporan masyarakat masuk", en="public report filed"),
        AuditAction.report_asked: Words(id="pertanyaan ke pelapor", en="question to the reporter"),
        AuditAction.report_answered: Words(id="pelapor menjawab", en="the reporter answered"),
        AuditAction.report_forwarded: Words(
            id="laporan diteruskan ke instansi", en="report forwarded to an agency"
        ),
        AuditAction.report_launched: Words(
            id="rujukan dimulai dari laporan", en="referral launched from the report"
        ),
        AuditAction.report_closed: Words(id="laporan ditutup", en="report closed"),
        AuditAction.report_viewed: Words(id="isi laporan dilihat", en="report's content viewed"),
        AuditAction.cases_exported: Words(
            id="data kasus diekspor (tanpa identitas)", en="case records exported (de-identified)"
        ),
        AuditAction.key_rotated: Words(id="kunci rahasia diganti", en="secret key rotated"),
        AuditAction.data_resealed: Words(id="data disegel ulang", en="data re-sealed"),
    },
}

# Languages a victim may speak, by the code the intake records (ISO 639-1, or ISO 639-3 where a
# language of Indonesia has no two-letter code). A code not listed is shown with a fallback.
LANGUAGE_NAMES: dict[str, Words] = {
    "id": Words(id="Bahasa Indonesia", en="Indonesian"),
    "jv": Words(id="Jawa", en="Javanese"),
    "su": Words(id="Sunda", en="Sundanese"),
    "ms": Words(id="Melayu", en="Malay"),
    "mad": Words(id="Madura", en="Madurese"),
    "min": Words(id="Minangkabau", en="Minangkabau"),
    "ban": Words(id="Bali", en="Balinese"),
    "bug": Words(id="Bugis", en="Buginese"),
    "bjn": Words(id="Banjar", en="Banjarese"),
    "ace": Words(id="Aceh", en="Acehnese"),
    "sas": Words(id="Sasak", en="Sasak"),
    "mak": Words(id="Makassar", en="Makasar"),
    "bew": Words(id="Betawi", en="Betawi"),
    "en": Words(id="Inggris", en="English"),
    "ar": Words(id="Arab", en="Arabic"),
    "zh": Words(id="Tionghoa (Mandarin)", en="Chinese"),
    "tl": Words(id="Tagalog", en="Tagalog"),
    "vi": Words(id="Vietnam", en="Vietnamese"),
    "th": Words(id="Thai", en="Thai"),
    "km": Words(id="Khmer", en="Khmer"),
    "my": Words(id="Myanmar", en="Burmese"),
    "lo": Words(id="Laos", en="Lao"),
    "tet": Words(id="Tetun", en="Tetum"),
    "pt": Words(id="Portugis", en="Portuguese"),
    "ko": Words(id="Korea", en="Korean"),
    "ja": Words(id="Jepang", en="Japanese"),
    "hi": Words(id="Hindi", en="Hindi"),
    "bn": Words(id="Bengali", en="Bengali"),
    "ne": Words(id="Nepal", en="Nepali"),
    "ur": Words(id="Urdu", en="Urdu"),
}
UNKNOWN_LANGUAGE = Words(id="bahasa lain (kode {code})", en="another language (code {code})")

# The words of an age group as models/intake.py's age_group writes it ("anak (<18)").
AGE_WORDS: dict[str, Words] = {
    "anak": Words(id="anak", en="child"),
    "dewasa": Words(id="dewasa", en="adult"),
}


def language_name(code: str, locale: str) -> str:
    """The name of a language code in `locale`: 'Jawa' / 'Javanese' for 'jv'."""
    words = LANGUAGE_NAMES.get(code)
    return words.text(locale) if words else UNKNOWN_LANGUAGE.text(locale).format(code=code)


def age_group_label(group: str, locale: str) -> str:
    """An age group in `locale`: 'anak (<18)' reads 'child (<18)' in English."""
    word, _, span = group.partition(" ")
    words = AGE_WORDS.get(word)
    return f"{words.text(locale)} {span}".strip() if words else group


# The kinds of reason and outcome codes, as `rujukan codes` and GET /api/codes name them.
CODE_KINDS: dict[str, type[StrEnum]] = {
    "outcome": OutcomeCode,
    "decline-reason": DeclineCode,
    "extension-reason": ExtensionCode,
    "cancel-reason": CancelCode,
    "exploitation": ExploitationCode,
    "case-source": CaseSourceCode,
    "recruitment": RecruitmentCode,
    "report-close-reason": ReportCloseCode,
    "at-risk": AtRiskCode,
}


def label(kind: type[StrEnum], code: str | None, locale: str) -> str:
    """The label of `code` (a member or stored value of `kind`) in `locale`; "" for no code.

    A value `kind` does not know (a row older than its enum) is shown as it is.
    """
    if not code:
        return ""
    try:
        return LABELS[kind][kind(code)].text(locale)
    except ValueError:
        return str(code)


def choices(kind: type[StrEnum], locale: str) -> list[tuple[str, str]]:
    """Every code of `kind` with its label in `locale`, in the enum's order (for a form)."""
    return [(member.value, LABELS[kind][member].text(locale)) for member in kind]


def case_option_label(option: str, locale: str) -> str:
    """The label of a case option (a field of models/intake.py's CaseOptions) in `locale`."""
    words = CASE_OPTION_LABELS.get(option)
    return words.text(locale) if words else option


def all_codes() -> dict[str, list[dict[str, str]]]:
    """Every reason and outcome code of every kind, with both labels."""
    return {
        kind: [{"code": member.value, **LABELS[enum][member].model_dump()} for member in enum]
        for kind, enum in CODE_KINDS.items()
    }
