"""Labels of the outcome, decline and extension codes in Bahasa Indonesia and English."""

from __future__ import annotations

from models.step import CancelCode, DeclineCode, ExtensionCode, OutcomeCode

LABELS: dict[str, dict[str, str]] = {
    # outcomes
    "served": {"id": "Terlayani", "en": "Served"},
    "partly-served": {"id": "Terlayani sebagian", "en": "Partly served"},
    "unreachable": {"id": "Korban tidak dapat dihubungi", "en": "Victim unreachable"},
    "refused": {"id": "Korban menolak layanan", "en": "Victim refused the service"},
    "referred-elsewhere": {"id": "Dirujuk ke layanan lain", "en": "Referred elsewhere"},
    # decline reasons
    "no-capacity": {"id": "Tidak ada kapasitas", "en": "No capacity"},
    "not-eligible": {"id": "Tidak memenuhi syarat", "en": "Not eligible"},
    "not-our-mandate": {"id": "Bukan kewenangan kami", "en": "Not our mandate"},
    "conflict-of-interest": {"id": "Konflik kepentingan", "en": "Conflict of interest"},
    "other": {"id": "Lainnya", "en": "Other"},
    # extension reasons
    "victim-unavailable": {"id": "Korban belum dapat ditemui", "en": "Victim not available yet"},
    "waiting-for-documents": {"id": "Menunggu dokumen", "en": "Waiting for documents"},
    "waiting-for-other-agency": {
        "id": "Menunggu instansi lain",
        "en": "Waiting for another agency",
    },
    # cancel reasons
    "not-needed": {"id": "Tidak diperlukan lagi", "en": "No longer needed"},
    "duplicate": {"id": "Duplikat", "en": "Duplicate"},
    "consent-withdrawn": {"id": "Korban menarik persetujuan", "en": "Consent withdrawn"},
    "victim-moved": {"id": "Korban pindah/keluar wilayah", "en": "The victim moved away"},
    "handled-elsewhere": {"id": "Ditangani di tempat lain", "en": "Handled elsewhere"},
    "entered-in-error": {"id": "Salah input", "en": "Entered in error"},
}

KINDS = {
    "outcome": OutcomeCode,
    "decline-reason": DeclineCode,
    "extension-reason": ExtensionCode,
    "cancel-reason": CancelCode,
}


def label(code: str, locale: str) -> str:
    """The label of a code in `locale`, or the code itself."""
    return LABELS.get(code, {}).get(locale, code)


def all_codes() -> dict[str, list[dict[str, str]]]:
    """Every code of every kind, with both labels."""
    return {
        kind: [{"code": c.value, **LABELS[c.value]} for c in enum] for kind, enum in KINDS.items()
    }
