"""The words of the web pages in Bahasa Indonesia (default) and English.

The labels of codes (statuses, reasons, outcomes, audit actions, case options) are in
models/vocabulary.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.vocabulary import Words

TEXT: dict[str, Words] = {
    # frame
    "app": Words(id="Rujukan", en="Rujukan"),
    "tagline": Words(
        id="Rujukan antarinstansi korban TPPO", en="Interagency referral of trafficking victims"
    ),
    "switch_language": Words(id="English", en="Bahasa Indonesia"),
    "sign_out": Words(id="Keluar", en="Sign out"),
    "signed_in_as": Words(id="Masuk sebagai", en="Signed in as"),
    "skip": Words(id="Langsung ke isi", en="Skip to content"),
    "confidential": Words(
        id="Rahasia: identitas korban dilindungi UU 21/2007 ps. 44. Jangan diteruskan.",
        en="Confidential: the victim's identity is protected by law (UU 21/2007 art. 44). "
        "Do not forward.",
    ),
    # sign-in
    "signin_title": Words(id="Masuk", en="Sign in"),
    "signin_intro": Words(
        id="Buka tautan dari pesan Rujukan, atau tempel token akses pribadi Anda.",
        en="Open the link in your Rujukan message, or paste your personal access token.",
    ),
    "token": Words(id="Token akses", en="Access token"),
    "signin_button": Words(id="Masuk", en="Sign in"),
    "signed_out": Words(id="Anda sudah keluar.", en="You are signed out."),
    # inbox
    "inbox": Words(id="Kotak masuk", en="Inbox"),
    "inbox_of": Words(id="Tugas terbuka", en="Open steps"),
    "inbox_empty": Words(
        id="Tidak ada tugas terbuka. Terima kasih!", en="No open steps. Thank you!"
    ),
    "inbox_scope_one": Words(
        id="Tautan ini membuka satu tugas saja.", en="This link opens one step only."
    ),
    "reference": Words(id="Kode rujukan", en="Reference"),
    "step": Words(id="Tugas", en="Step"),
    "due": Words(id="Batas waktu", en="Due"),
    "status": Words(id="Status", en="Status"),
    "open_step": Words(id="Buka", en="Open"),
    # step page
    "basis": Words(id="Dasar hukum", en="Legal basis"),
    "facts": Words(id="Data korban yang boleh Anda lihat", en="Facts about the victim you may see"),
    "facts_none": Words(
        id="Tugas ini tidak memerlukan data korban.",
        en="This step needs no facts about the victim.",
    ),
    "facts_closed": Words(
        id="Data korban hanya ditampilkan selama tugas ini terbuka untuk instansi Anda.",
        en="The victim's facts are shown only while this step is open to your agency.",
    ),
    "facts_note": Words(
        id="Hanya data yang diperlukan tugas ini. Setiap akses dicatat.",
        en="Only what this step needs. Every view is recorded.",
    ),
    "agency": Words(id="Instansi", en="Agency"),
    "accept": Words(id="Terima tugas", en="Accept the step"),
    "accept_hint": Words(
        id="Dengan menerima, instansi Anda menangani tugas ini sampai selesai.",
        en="By accepting, your agency takes this step on until it is done.",
    ),
    "decline": Words(id="Tolak tugas", en="Decline the step"),
    "decline_hint": Words(
        id="Koordinator akan meneruskan tugas ke instansi lain.",
        en="The coordinator will hand the step to another agency.",
    ),
    "complete": Words(id="Selesaikan tugas", en="Complete the step"),
    "extend": Words(id="Minta perpanjangan waktu", en="Ask for more time"),
    "extend_hint": Words(
        id="Koordinator akan memutuskan. Batas waktu lama tetap berlaku sampai disetujui.",
        en="The coordinator decides. The current deadline holds until then.",
    ),
    "reason": Words(id="Alasan", en="Reason"),
    "outcome": Words(id="Hasil", en="Outcome"),
    "choose": Words(id="— pilih —", en="— choose —"),
    "note": Words(id="Catatan (tidak wajib)", en="Note (optional)"),
    "note_hint": Words(
        id="Catatan disimpan terenkripsi dan hanya terlihat oleh instansi ini dan koordinator.",
        en="Notes are stored encrypted and seen only by this agency and the coordinator.",
    ),
    "new_date": Words(id="Tanggal baru", en="New date"),
    "new_time": Words(id="Jam", en="Time"),
    "in_local_time": Words(id="waktu setempat", en="local time"),
    "officer": Words(id="Nama petugas (tidak wajib)", en="Your name (optional)"),
    "send": Words(id="Kirim", en="Send"),
    "extension_pending": Words(id="Perpanjangan diminta sampai", en="Extension requested until"),
    "notes": Words(id="Catatan", en="Notes"),
    "back_to_inbox": Words(id="Kembali ke kotak masuk", en="Back to the inbox"),
    "step_closed": Words(id="Tugas ini sudah ditutup.", en="This step is closed."),
    "done_accepted": Words(id="Tugas diterima. Terima kasih.", en="Step accepted. Thank you."),
    "done_declined": Words(
        id="Tugas ditolak. Koordinator sudah diberi tahu.",
        en="Step declined. The coordinator has been told.",
    ),
    "done_completed": Words(
        id="Tugas selesai. Instansi berikutnya sudah diberi tahu.",
        en="Step completed. The next agencies have been told.",
    ),
    "done_extension": Words(
        id="Permintaan perpanjangan terkirim ke koordinator.",
        en="Your request for more time went to the coordinator.",
    ),
    "done_already": Words(
        id="Sudah dilakukan sebelumnya; tidak ada yang berubah.",
        en="Already done; nothing changed.",
    ),
    "done_launched": Words(
        id="Rujukan dimulai. Instansi pertama sudah diberi tahu.",
        en="Referral launched. The first agencies have been told.",
    ),
    "done_changed": Words(id="Tersimpan.", en="Saved."),
    "left": Words(id="sisa", en="left"),
    "late": Words(id="terlambat", en="late"),
    "overdue": Words(id="Terlambat", en="Overdue"),
    "escalated": Words(id="Dieskalasi", en="Escalated"),
    # coordinator
    "coordinator": Words(id="Koordinator", en="Coordinator"),
    "referrals": Words(id="Rujukan", en="Referrals"),
    "active_referrals": Words(id="Rujukan aktif", en="Active referrals"),
    "new_intake": Words(id="Intake baru", en="New intake"),
    "show_all": Words(
        id="Tampilkan semua rujukan (juga yang selesai)", en="Show all referrals (closed too)"
    ),
    "show_active": Words(id="Tampilkan yang aktif saja", en="Show active referrals only"),
    "no_referrals": Words(id="Belum ada rujukan aktif.", en="No active referrals yet."),
    "pathway": Words(id="Alur layanan", en="Pathway"),
    "urgency": Words(id="Urgensi", en="Urgency"),
    "regular": Words(id="Biasa", en="Regular"),
    "emergency": Words(id="Darurat", en="Emergency"),
    "created": Words(id="Dibuat", en="Created"),
    "attention": Words(id="Perlu tindakan", en="Needs you"),
    "awaiting_reroute": Words(id="menunggu dialihkan", en="awaiting re-route"),
    "extension_requested": Words(id="minta perpanjangan", en="extension requested"),
    "intake_title": Words(id="Intake dan peluncuran rujukan", en="Intake and launch of a referral"),
    "person": Words(id="Data korban", en="The person"),
    "name": Words(id="Nama", en="Name"),
    "sex": Words(id="Jenis kelamin", en="Sex"),
    "sex_F": Words(id="Perempuan", en="Female"),
    "sex_M": Words(id="Laki-laki", en="Male"),
    "sex_X": Words(id="Lainnya / tidak disebut", en="Other / not stated"),
    "birth_year": Words(id="Tahun lahir", en="Birth year"),
    "age_group": Words(id="Kelompok umur", en="Age group"),
    "nationality": Words(
        id="Kewarganegaraan (kode ISO, mis. ID)", en="Nationality (ISO code, e.g. ID)"
    ),
    "languages": Words(
        id="Bahasa (kode, dipisah koma, mis. id, jv)",
        en="Languages (codes, comma-separated, e.g. id, jv)",
    ),
    "phone": Words(id="Telepon", en="Phone"),
    "home_district": Words(id="Kabupaten/kota asal", en="Home district"),
    "address": Words(id="Alamat", en="Address"),
    "fact_name": Words(id="Nama", en="Name"),
    "fact_sex": Words(id="Jenis kelamin", en="Sex"),
    "fact_age_group": Words(id="Kelompok umur", en="Age group"),
    "fact_birth_year": Words(id="Tahun lahir", en="Birth year"),
    "fact_nationality": Words(id="Kewarganegaraan", en="Nationality"),
    "fact_languages": Words(id="Bahasa", en="Languages"),
    "fact_phone": Words(id="Telepon", en="Phone"),
    "fact_home_district": Words(id="Daerah asal", en="Home district"),
    "fact_address": Words(id="Alamat", en="Address"),
    "case_options": Words(id="Keadaan kasus", en="The case"),
    # the task force's pages
    "manager": Words(id="Gugus Tugas", en="Task force"),
    "manager_title": Words(id="Pemantauan rujukan", en="Referral monitoring"),
    "late_now": Words(id="Terlambat dan dieskalasi sekarang", en="Late and escalated now"),
    "late_none": Words(
        id="Tidak ada tugas yang terlambat atau dieskalasi.", en="No step is late or escalated."
    ),
    "late_count": Words(id="tugas", en="steps"),
    "since": Words(id="Sejak", en="Since"),
    "escalated_badge": Words(id="Dieskalasi", en="Escalated"),
    "timeline_link": Words(id="Linimasa", en="Timeline"),
    "latest_report": Words(id="Laporan bulan lalu", en="Last month's report"),
    "full_report": Words(id="Laporan lengkap", en="Full report"),
    "download": Words(id="Unduh", en="Download"),
    "prefect_link": Words(
        id="Tampilan mesin alur kerja (Prefect, bahasa Inggris)",
        en="The workflow engine's view (Prefect)",
    ),
    "report_title": Words(id="Laporan pemantauan", en="Monitoring report"),
    "manager_note": Words(
        id="Halaman ini hanya untuk dibaca: status tugas dan angka laporan, tanpa data pribadi "
        "korban.",
        en="Read only: step statuses and report figures, without the victims' personal data.",
    ),
    "case_facts": Words(id="Data statistik kasus", en="Case facts for statistics"),
    "case_facts_hint": Words(
        id="Tidak wajib. Hanya kode untuk laporan gugus tugas; tidak pernah dikirim dalam pesan.",
        en="Optional. Codes for the task force's report only; never sent in a message.",
    ),
    "fact_exploitation": Words(id="Bentuk eksploitasi", en="Form of exploitation"),
    "fact_source": Words(id="Asal kasus", en="How the case came in"),
    "fact_recruitment": Words(id="Cara perekrutan", en="Recruitment channel"),
    "fact_place": Words(id="Tempat kejadian (negara/provinsi)", en="Where it happened"),
    "fact_place_hint": Words(
        id="Kode negara (MY) atau provinsi (ID-BE), bukan alamat.",
        en="A country code (MY) or province code (ID-BE), not an address.",
    ),
    "not_known": Words(id="(tidak diisi)", en="(not given)"),
    "consent": Words(id="Persetujuan korban", en="The victim's consent"),
    "consent_hint": Words(
        id="Centang setiap instansi yang disetujui korban untuk menerima datanya. "
        "Alur layanan membutuhkan persetujuan untuk semua instansi penerimanya.",
        en="Tick every agency the victim agreed may receive the case. The pathway needs "
        "consent for each of its receiving agencies.",
    ),
    "in_pathways": Words(id="dipakai di alur", en="used by pathways"),
    "override": Words(
        id="Tanpa persetujuan (pengecualian, mis. kepentingan terbaik anak)",
        en="Without consent (override, e.g. a child's best interest)",
    ),
    "override_reason": Words(id="Alasan pengecualian", en="Reason for the override"),
    "launch": Words(id="Mulai rujukan", en="Launch the referral"),
    "timeline": Words(id="Linimasa", en="Timeline"),
    "steps": Words(id="Tugas", en="Steps"),
    "audit_trail": Words(id="Jejak audit", en="Audit trail"),
    "when": Words(id="Waktu", en="When"),
    "who": Words(id="Siapa", en="Who"),
    "what": Words(id="Apa", en="What"),
    "reroute": Words(id="Alihkan ke instansi lain", en="Re-route to another agency"),
    "reroute_to": Words(id="Instansi baru", en="New agency"),
    "approve_extension": Words(id="Setujui perpanjangan", en="Approve the extension"),
    "refuse_extension": Words(id="Tolak perpanjangan", en="Refuse the extension"),
    "other_date": Words(id="Tanggal lain (tidak wajib)", en="Another date (optional)"),
    "cancel_step": Words(id="Batalkan tugas", en="Cancel the step"),
    "cancel_referral": Words(id="Tutup (batalkan) rujukan ini", en="Close (cancel) this referral"),
    "cancel_warning": Words(
        id="Semua tugas yang belum selesai akan dibatalkan.",
        en="Every step not yet finished will be cancelled.",
    ),
    "add_consent": Words(
        id="Catat persetujuan untuk instansi lain", en="Record consent for another agency"
    ),
    "show_person": Words(id="Lihat data korban (dicatat)", en="Show the person's data (recorded)"),
    "outcome_label": Words(id="Hasil", en="Outcome"),
    "decline_reason": Words(id="Alasan penolakan", en="Decline reason"),
    "back_to_referral": Words(id="Kembali ke rujukan", en="Back to the referral"),
    "back_to_list": Words(id="Kembali ke daftar", en="Back to the list"),
    "reset": Words(id="Ulangi", en="Start over"),
    # errors
    "error": Words(id="Terjadi masalah", en="Something went wrong"),
    "error_400": Words(id="Isian belum benar", en="Please check your input"),
    "error_401": Words(id="Silakan masuk", en="Please sign in"),
    "error_403": Words(id="Akses ditolak", en="Access refused"),
    "error_404": Words(id="Tidak ditemukan", en="Not found"),
    "error_409": Words(id="Tidak dapat dilakukan sekarang", en="Not possible now"),
    "error_hint": Words(
        id="Jika Anda merasa ini keliru, hubungi koordinator kasus.",
        en="If you think this is wrong, contact the case coordinator.",
    ),
    "link_refused": Words(
        id="Tautan ini tidak berlaku (kedaluwarsa atau tidak sah). "
        "Minta tautan baru ke koordinator.",
        en="This link does not work (expired or not valid). Ask the coordinator for a new one.",
    ),
    "token_refused": Words(
        id="Token ini tidak berlaku (dicabut, kedaluwarsa atau salah). "
        "Minta token baru ke operator.",
        en="This token does not work (revoked, expired or wrong). Ask the operator for a new one.",
    ),
    "csrf_refused": Words(
        id="Formulir kedaluwarsa. Muat ulang halaman dan coba lagi.",
        en="The form has expired. Reload the page and try again.",
    ),
}

# Days, hours and minutes, for the time left to a deadline.
UNITS = (Words(id="hari", en="d"), Words(id="jam", en="h"), Words(id="menit", en="min"))


def words(locale: str):
    """A `t(key)` function for templates: the word in `locale`, or the key if it has none."""

    def t(key: str) -> str:
        return TEXT[key].text(locale) if key in TEXT else key

    return t


def span_text(delta: timedelta, locale: str) -> str:
    """A span like '2 hari 3 jam' / '2 d 3 h', '45 menit' / '45 min'."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {u.text(locale)}" for n, u in zip((days, hours, mins), UNITS, strict=True) if n]
    if days:
        parts = parts[:2] if not mins or hours else parts[:1]
    return " ".join(parts[:2]) or f"0 {UNITS[2].text(locale)}"


def time_left_text(due: datetime | None, now: datetime, locale: str) -> str:
    """'sisa 5 jam' or 'terlambat 2 jam' ('5 h left', '2 h late')."""
    if due is None:
        return ""
    if due > now:
        return (
            f"{span_text(due - now, locale)} {TEXT['left'].text(locale)}"
            if locale == "en"
            else f"{TEXT['left'].text(locale)} {span_text(due - now, locale)}"
        )
    return (
        f"{span_text(now - due, locale)} {TEXT['late'].text(locale)}"
        if locale == "en"
        else f"{TEXT['late'].text(locale)} {span_text(now - due, locale)}"
    )
