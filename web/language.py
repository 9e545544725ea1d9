"""The words of the web pages in Bahasa Indonesia (default) and English."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.codes import label
from models.step import CancelCode

LOCALES = ("id", "en")
DEFAULT_LOCALE = "id"

# Reasons a coordinator may give for cancelling: codes, so that no free text (which could name
# the person) reaches the audit trail through the engine's `reason`.
CANCEL_REASONS = tuple(code.value for code in CancelCode)

TEXT: dict[str, tuple[str, str]] = {
    # frame
    "app": ("Rujukan", "Rujukan"),
    "tagline": ("Rujukan antarinstansi korban TPPO", "Interagency referral of trafficking victims"),
    "switch_language": ("English", "Bahasa Indonesia"),
    "sign_out": ("Keluar", "Sign out"),
    "signed_in_as": ("Masuk sebagai", "Signed in as"),
    "skip": ("Langsung ke isi", "Skip to content"),
    "confidential": (
        "Rahasia: identitas korban dilindungi UU 21/2007 ps. 44. Jangan diteruskan.",
        "Confidential: the victim's identity is protected by law (UU 21/2007 art. 44). "
        "Do not forward.",
    ),
    # sign-in
    "signin_title": ("Masuk", "Sign in"),
    "signin_intro": (
        "Buka tautan dari pesan Rujukan, atau tempel token akses pribadi Anda.",
        "Open the link in your Rujukan message, or paste your personal access token.",
    ),
    "token": ("Token akses", "Access token"),
    "signin_button": ("Masuk", "Sign in"),
    "signed_out": ("Anda sudah keluar.", "You are signed out."),
    # inbox
    "inbox": ("Kotak masuk", "Inbox"),
    "inbox_of": ("Tugas terbuka", "Open steps"),
    "inbox_empty": ("Tidak ada tugas terbuka. Terima kasih!", "No open steps. Thank you!"),
    "inbox_scope_one": ("Tautan ini membuka satu tugas saja.", "This link opens one step only."),
    "reference": ("Kode rujukan", "Reference"),
    "step": ("Tugas", "Step"),
    "due": ("Batas waktu", "Due"),
    "status": ("Status", "Status"),
    "open_step": ("Buka", "Open"),
    # step page
    "basis": ("Dasar hukum", "Legal basis"),
    "facts": ("Data korban yang boleh Anda lihat", "Facts about the victim you may see"),
    "facts_none": (
        "Tugas ini tidak memerlukan data korban.",
        "This step needs no facts about the victim.",
    ),
    "facts_note": (
        "Hanya data yang diperlukan tugas ini. Setiap akses dicatat.",
        "Only what this step needs. Every view is recorded.",
    ),
    "agency": ("Instansi", "Agency"),
    "accept": ("Terima tugas", "Accept the step"),
    "accept_hint": (
        "Dengan menerima, instansi Anda menangani tugas ini sampai selesai.",
        "By accepting, your agency takes this step on until it is done.",
    ),
    "decline": ("Tolak tugas", "Decline the step"),
    "decline_hint": (
        "Koordinator akan meneruskan tugas ke instansi lain.",
        "The coordinator will hand the step to another agency.",
    ),
    "complete": ("Selesaikan tugas", "Complete the step"),
    "extend": ("Minta perpanjangan waktu", "Ask for more time"),
    "extend_hint": (
        "Koordinator akan memutuskan. Batas waktu lama tetap berlaku sampai disetujui.",
        "The coordinator decides. The current deadline holds until then.",
    ),
    "reason": ("Alasan", "Reason"),
    "outcome": ("Hasil", "Outcome"),
    "choose": ("— pilih —", "— choose —"),
    "note": ("Catatan (tidak wajib)", "Note (optional)"),
    "note_hint": (
        "Catatan disimpan terenkripsi dan hanya terlihat oleh instansi ini dan koordinator.",
        "Notes are stored encrypted and seen only by this agency and the coordinator.",
    ),
    "new_date": ("Tanggal baru", "New date"),
    "new_time": ("Jam", "Time"),
    "in_local_time": ("waktu setempat", "local time"),
    "officer": ("Nama petugas (tidak wajib)", "Your name (optional)"),
    "send": ("Kirim", "Send"),
    "extension_pending": ("Perpanjangan diminta sampai", "Extension requested until"),
    "notes": ("Catatan", "Notes"),
    "back_to_inbox": ("Kembali ke kotak masuk", "Back to the inbox"),
    "step_closed": ("Tugas ini sudah ditutup.", "This step is closed."),
    "done_accepted": ("Tugas diterima. Terima kasih.", "Step accepted. Thank you."),
    "done_declined": (
        "Tugas ditolak. Koordinator sudah diberi tahu.",
        "Step declined. The coordinator has been told.",
    ),
    "done_completed": (
        "Tugas selesai. Instansi berikutnya sudah diberi tahu.",
        "Step completed. The next agencies have been told.",
    ),
    "done_extension": (
        "Permintaan perpanjangan terkirim ke koordinator.",
        "Your request for more time went to the coordinator.",
    ),
    "done_already": (
        "Sudah dilakukan sebelumnya; tidak ada yang berubah.",
        "Already done; nothing changed.",
    ),
    "done_launched": (
        "Rujukan dimulai. Instansi pertama sudah diberi tahu.",
        "Referral launched. The first agencies have been told.",
    ),
    "done_changed": ("Tersimpan.", "Saved."),
    "left": ("sisa", "left"),
    "late": ("terlambat", "late"),
    "overdue": ("Terlambat", "Overdue"),
    "escalated": ("Dieskalasi", "Escalated"),
    # coordinator
    "coordinator": ("Koordinator", "Coordinator"),
    "referrals": ("Rujukan", "Referrals"),
    "active_referrals": ("Rujukan aktif", "Active referrals"),
    "new_intake": ("Intake baru", "New intake"),
    "show_all": ("Tampilkan semua rujukan (juga yang selesai)", "Show all referrals (closed too)"),
    "show_active": ("Tampilkan yang aktif saja", "Show active referrals only"),
    "no_referrals": ("Belum ada rujukan aktif.", "No active referrals yet."),
    "pathway": ("Alur layanan", "Pathway"),
    "urgency": ("Urgensi", "Urgency"),
    "regular": ("Biasa", "Regular"),
    "emergency": ("Darurat", "Emergency"),
    "created": ("Dibuat", "Created"),
    "attention": ("Perlu tindakan", "Needs you"),
    "awaiting_reroute": ("menunggu dialihkan", "awaiting re-route"),
    "extension_requested": ("minta perpanjangan", "extension requested"),
    "intake_title": ("Intake dan peluncuran rujukan", "Intake and launch of a referral"),
    "person": ("Data korban", "The person"),
    "name": ("Nama", "Name"),
    "sex": ("Jenis kelamin", "Sex"),
    "sex_F": ("Perempuan", "Female"),
    "sex_M": ("Laki-laki", "Male"),
    "sex_X": ("Lainnya / tidak disebut", "Other / not stated"),
    "birth_year": ("Tahun lahir", "Birth year"),
    "age_group": ("Kelompok umur", "Age group"),
    "nationality": ("Kewarganegaraan (kode ISO, mis. ID)", "Nationality (ISO code, e.g. ID)"),
    "languages": (
        "Bahasa (kode, dipisah koma, mis. id, jv)",
        "Languages (codes, comma-separated, e.g. id, jv)",
    ),
    "phone": ("Telepon", "Phone"),
    "home_district": ("Kabupaten/kota asal", "Home district"),
    "address": ("Alamat", "Address"),
    "fact_name": ("Nama", "Name"),
    "fact_sex": ("Jenis kelamin", "Sex"),
    "fact_age_group": ("Kelompok umur", "Age group"),
    "fact_birth_year": ("Tahun lahir", "Birth year"),
    "fact_nationality": ("Kewarganegaraan", "Nationality"),
    "fact_languages": ("Bahasa", "Languages"),
    "fact_phone": ("Telepon", "Phone"),
    "fact_home_district": ("Daerah asal", "Home district"),
    "fact_address": ("Alamat", "Address"),
    "case_options": ("Keadaan kasus", "The case"),
    "wants_prosecution": ("Korban ingin proses hukum", "The victim wants prosecution"),
    "needs_shelter": ("Korban butuh rumah aman", "The victim needs shelter"),
    "claims_restitution": ("Korban menuntut restitusi", "The victim claims restitution"),
    "wants_return": ("Korban ingin pulang ke daerah asal", "The victim wants to return home"),
    "consent": ("Persetujuan korban", "The victim's consent"),
    "consent_hint": (
        "Centang setiap instansi yang disetujui korban untuk menerima datanya. "
        "Alur layanan membutuhkan persetujuan untuk semua instansi penerimanya.",
        "Tick every agency the victim agreed may receive the case. The pathway needs "
        "consent for each of its receiving agencies.",
    ),
    "in_pathways": ("dipakai di alur", "used by pathways"),
    "override": (
        "Tanpa persetujuan (pengecualian, mis. kepentingan terbaik anak)",
        "Without consent (override, e.g. a child's best interest)",
    ),
    "override_reason": ("Alasan pengecualian", "Reason for the override"),
    "launch": ("Mulai rujukan", "Launch the referral"),
    "timeline": ("Linimasa", "Timeline"),
    "steps": ("Tugas", "Steps"),
    "audit_trail": ("Jejak audit", "Audit trail"),
    "when": ("Waktu", "When"),
    "who": ("Siapa", "Who"),
    "what": ("Apa", "What"),
    "reroute": ("Alihkan ke instansi lain", "Re-route to another agency"),
    "reroute_to": ("Instansi baru", "New agency"),
    "approve_extension": ("Setujui perpanjangan", "Approve the extension"),
    "refuse_extension": ("Tolak perpanjangan", "Refuse the extension"),
    "other_date": ("Tanggal lain (tidak wajib)", "Another date (optional)"),
    "cancel_step": ("Batalkan tugas", "Cancel the step"),
    "cancel_referral": ("Tutup (batalkan) rujukan ini", "Close (cancel) this referral"),
    "cancel_warning": (
        "Semua tugas yang belum selesai akan dibatalkan.",
        "Every step not yet finished will be cancelled.",
    ),
    "add_consent": ("Catat persetujuan untuk instansi lain", "Record consent for another agency"),
    "show_person": ("Lihat data korban (dicatat)", "Show the person's data (recorded)"),
    "outcome_label": ("Hasil", "Outcome"),
    "decline_reason": ("Alasan penolakan", "Decline reason"),
    "back_to_referral": ("Kembali ke rujukan", "Back to the referral"),
    "back_to_list": ("Kembali ke daftar", "Back to the list"),
    "reset": ("Ulangi", "Start over"),
    # errors
    "error": ("Terjadi masalah", "Something went wrong"),
    "error_400": ("Isian belum benar", "Please check your input"),
    "error_401": ("Silakan masuk", "Please sign in"),
    "error_403": ("Akses ditolak", "Access refused"),
    "error_404": ("Tidak ditemukan", "Not found"),
    "error_409": ("Tidak dapat dilakukan sekarang", "Not possible now"),
    "error_hint": (
        "Jika Anda merasa ini keliru, hubungi koordinator kasus.",
        "If you think this is wrong, contact the case coordinator.",
    ),
    "link_refused": (
        "Tautan ini tidak berlaku (kedaluwarsa atau tidak sah). Minta tautan baru ke koordinator.",
        "This link does not work (expired or not valid). Ask the coordinator for a new one.",
    ),
    "token_refused": (
        "Token ini tidak berlaku (dicabut, kedaluwarsa atau salah). Minta token baru ke operator.",
        "This token does not work (revoked, expired or wrong). Ask the operator for a new one.",
    ),
    "csrf_refused": (
        "Formulir kedaluwarsa. Muat ulang halaman dan coba lagi.",
        "The form has expired. Reload the page and try again.",
    ),
}

STATUS = {
    "pending": ("Menunggu", "Waiting"),
    "ready": ("Baru", "New"),
    "accepted": ("Diterima", "Accepted"),
    "completed": ("Selesai", "Completed"),
    "declined": ("Ditolak", "Declined"),
    "cancelled": ("Dibatalkan", "Cancelled"),
    "skipped": ("Dilewati", "Skipped"),
    "active": ("Berjalan", "Active"),
}

CANCEL_LABELS = {
    "not-needed": ("Tidak diperlukan lagi", "No longer needed"),
    "duplicate": ("Duplikat", "Duplicate"),
    "consent-withdrawn": ("Korban menarik persetujuan", "Consent withdrawn"),
    "victim-moved": ("Korban pindah/keluar wilayah", "The victim moved away"),
    "handled-elsewhere": ("Ditangani di tempat lain", "Handled elsewhere"),
    "entered-in-error": ("Salah input", "Entered in error"),
}

ACTIONS = {
    "launched": ("rujukan dimulai", "referral launched"),
    "ready": ("tugas siap, instansi diberi tahu", "step ready, agency told"),
    "accepted": ("diterima", "accepted"),
    "declined": ("ditolak", "declined"),
    "completed": ("selesai", "completed"),
    "skipped": ("dilewati (kondisi)", "skipped (condition)"),
    "rerouted": ("dialihkan", "re-routed"),
    "extension-requested": ("perpanjangan diminta", "extension requested"),
    "extension-approved": ("perpanjangan disetujui", "extension approved"),
    "extension-refused": ("perpanjangan ditolak", "extension refused"),
    "step-cancelled": ("tugas dibatalkan", "step cancelled"),
    "referral-cancelled": ("rujukan ditutup", "referral cancelled"),
    "referral-completed": ("rujukan selesai", "referral completed"),
    "person-viewed": ("data korban dilihat", "person's data viewed"),
    "notes-viewed": ("catatan dilihat", "notes viewed"),
    "note-added": ("catatan ditambahkan", "note added"),
    "consent-recorded": ("persetujuan dicatat", "consent recorded"),
    "refused": ("DITOLAK SISTEM", "REFUSED"),
    "overdue": ("terlambat", "overdue"),
    "escalated": ("dieskalasi", "escalated"),
    "reminded": ("pengingat dikirim", "reminder sent"),
}


def pick(pair: tuple[str, str], locale: str) -> str:
    """One of an (id, en) pair."""
    return pair[1] if locale == "en" else pair[0]


def words(locale: str):
    """A `t(key)` function for templates: the word in `locale`, or the key if it has none."""

    def t(key: str) -> str:
        return pick(TEXT[key], locale) if key in TEXT else key

    return t


def status_label(status: str, locale: str) -> str:
    """A step or referral status in `locale`."""
    return pick(STATUS[status], locale) if status in STATUS else status


def code_label(code: str | None, locale: str) -> str:
    """An outcome, decline, extension or cancel code in `locale`."""
    if not code:
        return ""
    if code in CANCEL_LABELS:
        return pick(CANCEL_LABELS[code], locale)
    return label(code, locale)


def action_label(action: str, locale: str) -> str:
    """An audit action in `locale`."""
    return pick(ACTIONS[action], locale) if action in ACTIONS else action


def span_text(delta: timedelta, locale: str) -> str:
    """A span like '2 hari 3 jam' / '2 d 3 h', '45 menit' / '45 min'."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    units = (("hari", "d"), ("jam", "h"), ("menit", "min"))
    parts = [f"{n} {pick(u, locale)}" for n, u in zip((days, hours, mins), units, strict=True) if n]
    if days:
        parts = parts[:2] if not mins or hours else parts[:1]
    return " ".join(parts[:2]) or f"0 {pick(units[2], locale)}"


def time_left_text(due: datetime | None, now: datetime, locale: str) -> str:
    """'sisa 5 jam' or 'terlambat 2 jam' ('5 h left', '2 h late')."""
    if due is None:
        return ""
    if due > now:
        return (
            f"{span_text(due - now, locale)} {pick(TEXT['left'], locale)}"
            if locale == "en"
            else f"{pick(TEXT['left'], locale)} {span_text(due - now, locale)}"
        )
    return (
        f"{span_text(now - due, locale)} {pick(TEXT['late'], locale)}"
        if locale == "en"
        else f"{pick(TEXT['late'], locale)} {span_text(now - due, locale)}"
    )
