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
        id="Tautan yang Anda buka hanya membuka tugas di bawah ini, bukan seluruh kotak masuk "
        "instansi Anda.",
        en="The links you opened open only the steps below, not your agency's whole inbox.",
    ),
    "link_steps_title": Words(id="Tugas dari tautan Anda", en="Steps from your links"),
    "link_steps_none_open": Words(
        id="Tugas dari tautan ini tidak ada yang terbuka lagi. Terima kasih!",
        en="None of the steps from these links is open any more. Thank you!",
    ),
    "whole_inbox": Words(id="Semua tugas instansi Anda", en="All your agency's steps"),
    "whole_inbox_signin": Words(
        id="Untuk melihat semua tugas {agency}, masuk dengan token akses pribadi Anda "
        "(minta ke operator Rujukan bila belum punya).",
        en="To see every step of {agency}, sign in with your personal access token "
        "(ask the Rujukan operator if you have none).",
    ),
    "whole_inbox_links": Words(
        id="Tautan dalam setiap pesan Rujukan untuk instansi Anda menambahkan tugasnya ke "
        "daftar ini.",
        en="The link in each Rujukan message to your agency adds its step to this list.",
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
    "officer": Words(id="Nama petugas (wajib)", en="Your name (required)"),
    "officer_hint": Words(
        id="Tautan tidak menyebut siapa Anda; nama Anda dicatat bersama tindakan ini dan "
        "diingat selama sesi ini.",
        en="A link does not say who you are; your name is recorded with this action and "
        "remembered for this session.",
    ),
    "acting_as": Words(id="Bertindak sebagai", en="Acting as"),
    "change": Words(id="ganti", en="change"),
    "save": Words(id="Simpan", en="Save"),
    "officer_needed": Words(
        id="Tulis nama Anda (petugas yang bertindak): tautan tidak menyebut siapa Anda, dan "
        "jejak audit mencatat siapa yang bertindak.",
        en="Write your name (the officer acting): a link does not say who you are, and the "
        "audit trail records who acted.",
    ),
    "officer_invalid": Words(
        id="Nama petugas harus 1-60 huruf, angka, spasi atau . @ ' -",
        en="Your name must be 1-60 letters, digits, spaces or . @ ' -",
    ),
    "send": Words(id="Kirim", en="Send"),
    "extension_pending": Words(id="Perpanjangan diminta sampai", en="Extension requested until"),
    "notes": Words(id="Catatan", en="Notes"),
    "back_to_inbox": Words(id="Kembali ke kotak masuk", en="Back to the inbox"),
    "step_closed": Words(id="Tugas ini sudah ditutup.", en="This step is closed."),
    "done_accepted": Words(id="Tugas diterima. Terima kasih.", en="Step accepted. Thank you."),
    "accepted_next": Words(
        id="Tidak ada pesan yang dikirim; koordinator melihatnya di linimasa rujukan. "
        "Setelah dilayani, selesaikan tugas di bawah.",
        en="No message was sent; the coordinator sees it in the referral's timeline. "
        "When it is done, complete the step below.",
    ),
    "done_declined": Words(id="Tugas ditolak.", en="Step declined."),
    "declined_next": Words(
        id="Koordinator ({agency}) akan mengalihkannya ke instansi lain.",
        en="The coordinator ({agency}) will hand it to another agency.",
    ),
    "done_completed": Words(id="Tugas selesai.", en="Step completed."),
    "done_extension": Words(
        id="Permintaan perpanjangan tercatat.", en="Your request for more time is recorded."
    ),
    "extension_next": Words(
        id="Koordinator ({agency}) memutuskan; batas waktu lama berlaku sampai disetujui.",
        en="The coordinator ({agency}) decides; the current deadline holds until then.",
    ),
    "delivery_sent": Words(id="Pesan terkirim ke {agency}.", en="A message went to {agency}."),
    "delivery_pending": Words(
        id="Pesan untuk {agency} sedang dikirim.", en="A message to {agency} is on its way."
    ),
    "delivery_failed": Words(
        id="Pesan untuk {agency} belum terkirim; sistem mencoba lagi dan operator melihatnya.",
        en="The message to {agency} has not gone through yet; it is retried and the operator "
        "sees it.",
    ),
    "delivery_none": Words(id="Tidak ada pesan untuk {agency}.", en="No message went to {agency}."),
    "told_intro": Words(
        id="Tugas berikutnya sudah siap dan instansinya diberi tahu:",
        en="The next steps are ready and their agencies were told:",
    ),
    "a_new_step": Words(id="tugas baru", en="a new step"),
    "sent_sent": Words(id="pesan terkirim", en="message sent"),
    "sent_pending": Words(id="pesan sedang dikirim", en="message on its way"),
    "sent_failed": Words(
        id="pesan belum terkirim (dicoba lagi)", en="message not through yet (retried)"
    ),
    "sent_none": Words(id="tanpa pesan", en="no message"),
    "step_of": Words(id="tugas {agency}", en="a step of {agency}"),
    "next": Words(id="Berikutnya:", en="Next:"),
    "waits_for": Words(id="masih menunggu", en="still waits for"),
    "not_told_yet": Words(
        id="Belum ada instansi lain yang diberi tahu.", en="No other agency was told yet."
    ),
    "referral_done": Words(
        id="Semua tugas rujukan ini selesai.", en="Every step of this referral is done."
    ),
    "nothing_next": Words(
        id="Tidak ada tugas lain yang menunggu tugas ini; tidak ada pesan yang dikirim.",
        en="No other step waits for this one; no message was sent.",
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
    "done_rerouted": Words(
        id="Tugas dialihkan ke {agency} dan instansi itu diberi tahu. Batas waktu baru: {due}.",
        en="The step went to {agency}, and that agency is told. New deadline: {due}.",
    ),
    "done_extension_approved": Words(
        id="Perpanjangan disetujui. Batas waktu baru: {due}.",
        en="Extension approved. New deadline: {due}.",
    ),
    "done_extension_refused": Words(
        id="Perpanjangan ditolak. Batas waktu tetap: {due}.",
        en="Extension refused. The deadline stays: {due}.",
    ),
    "done_cancelled": Words(id="Tugas dibatalkan.", en="The step is cancelled."),
    "done_closed": Words(
        id="Rujukan ditutup; tugas yang belum selesai dibatalkan.",
        en="The referral is closed; every step not yet finished is cancelled.",
    ),
    "done_consent": Words(
        id="Persetujuan korban dicatat untuk instansi itu.",
        en="The victim's consent is recorded for that agency.",
    ),
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
    "steps_done": Words(id="{done} dari {total} tugas selesai", en="{done} of {total} steps done"),
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
        id="Instansi penerima pada alur ini sudah dicentang. Hapus centang instansi yang tidak "
        "disetujui korban, lalu catat persetujuannya.",
        en="The pathway's receiving agencies are ticked. Untick any agency the victim did not "
        "agree to, then record the consent.",
    ),
    "consent_given": Words(
        id="Korban menyetujui datanya dibagikan kepada semua instansi yang dicentang",
        en="The victim agrees that the case is shared with every agency ticked",
    ),
    "consent_others": Words(
        id="Instansi lain (persetujuan untuk pengalihan nanti)",
        en="Other agencies (consent for a later re-route)",
    ),
    "intake_choose": Words(
        id="Pilih alur layanan kasus ini. Formulir berikutnya menampilkan instansi penerimanya.",
        en="Choose the case's pathway. The next form lists its receiving agencies.",
    ),
    "intake_next": Words(id="Lanjut", en="Continue"),
    "intake_change_pathway": Words(id="Ganti alur", en="Change the pathway"),
    "intake_agencies_count": Words(id="instansi", en="agencies"),
    "intake_field_error": Words(
        id="Isian \u201c{field}\u201d belum benar: {hint}.",
        en="The field \u201c{field}\u201d is not right: {hint}.",
    ),
    "hint_name": Words(id="tulis nama korban", en="write the victim's name"),
    "hint_sex": Words(id="pilih salah satu", en="choose one"),
    "hint_birth_year": Words(
        id="tulis tahun empat angka antara 1900 dan tahun ini, mis. 1998",
        en="write a four-digit year from 1900 to this year, e.g. 1998",
    ),
    "hint_nationality": Words(
        id="tulis kode negara dua huruf, mis. ID atau MY", en="write a two-letter country code"
    ),
    "hint_languages": Words(
        id="tulis kode bahasa dua atau tiga huruf, dipisah koma, mis. id, jv",
        en="write two- or three-letter language codes, comma-separated",
    ),
    "hint_phone": Words(
        id="tulis nomor telepon dengan angka, mis. +62 812 3456 7890",
        en="write the phone number in digits",
    ),
    "hint_home_district": Words(id="periksa isian ini", en="check this field"),
    "hint_address": Words(id="periksa isian ini", en="check this field"),
    "hint_fact_place": Words(
        id="tulis kode negara atau provinsi, mis. MY atau ID-BE, bukan alamat",
        en="write a country or province code such as MY or ID-BE, not an address",
    ),
    "intake_choose_pathway": Words(
        id="Pilih alur layanan kasus ini dulu.", en="Choose the case's pathway first."
    ),
    "intake_consent_unconfirmed": Words(
        id="Persetujuan korban belum dicatat: centang \u201cKorban menyetujui datanya dibagikan "
        "kepada semua instansi yang dicentang\u201d, atau pilih pengecualian dengan alasannya.",
        en="The victim's consent is not recorded: tick \u201cThe victim agrees that the case is "
        "shared with every agency ticked\u201d, or choose an override with its reason.",
    ),
    "intake_consent_missing": Words(
        id="Alur ini membutuhkan persetujuan korban untuk {agencies}. Centang instansi itu jika "
        "korban setuju, atau pilih pengecualian dengan alasannya.",
        en="This pathway needs the victim's consent for {agencies}. Tick them if the victim "
        "agrees, or choose an override with its reason.",
    ),
    "override": Words(
        id="Tanpa persetujuan (pengecualian, mis. kepentingan terbaik anak)",
        en="Without consent (override, e.g. a child's best interest)",
    ),
    "override_reason": Words(id="Alasan pengecualian", en="Reason for the override"),
    "launch": Words(id="Mulai rujukan", en="Launch the referral"),
    "timeline": Words(id="Linimasa", en="Timeline"),
    "steps": Words(id="Tugas", en="Steps"),
    "audit_from": Words(id="dari", en="from"),
    "audit_to": Words(id="ke", en="to"),
    "audit_due_at": Words(id="batas", en="due"),
    "audit_until": Words(id="sampai", en="until"),
    "replaces": Words(
        id="menggantikan tugas yang ditolak oleh", en="replaces the step declined by"
    ),
    "note_of": Words(id="Catatan", en="Note"),
    "notes_recorded": Words(
        id="Catatan dibuka untuk Anda; pembukaan ini dicatat di jejak audit.",
        en="Notes are opened for you; this view is recorded in the audit trail.",
    ),
    "audit_trail": Words(id="Jejak audit", en="Audit trail"),
    "when": Words(id="Waktu", en="When"),
    "who": Words(id="Siapa", en="Who"),
    "what": Words(id="Apa", en="What"),
    "reroute": Words(id="Alihkan ke instansi lain", en="Re-route to another agency"),
    "reroute_to": Words(id="Instansi baru", en="New agency"),
    "reroute_suggested": Words(
        id="Dapat mengambil alih layanan ini", en="Can take over this service"
    ),
    "reroute_others": Words(id="Instansi lain", en="Other agencies"),
    "no_consent_yet": Words(id="catat persetujuan dulu", en="record consent first"),
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
    # the public reporting page (/lapor)
    "lapor_title": Words(id="Laporkan dugaan perdagangan orang", en="Report suspected trafficking"),
    "lapor_short": Words(id="Lapor TPPO", en="Report trafficking"),
    "lapor_intro": Words(
        id="Tanpa nama, tanpa akun. Laporan Anda dibaca koordinator kasus pemerintah daerah dan "
        "ditanggapi dalam 24 jam (2 jam jika ada orang dalam bahaya).",
        en="No name, no account. Your report is read by the district's case coordinators and "
        "taken up within 24 hours (2 hours if someone is in danger).",
    ),
    "quick_exit": Words(id="Keluar cepat", en="Quick exit"),
    "quick_exit_hint": Words(
        id="Tombol ini langsung membuka situs cuaca. Halaman ini tidak disimpan di peramban.",
        en="This button opens a weather site at once. This page is not kept in the browser.",
    ),
    "danger_box": Words(
        id="Ada orang dalam bahaya sekarang? Telepon polisi 110.",
        en="Is someone in danger right now? Call the police on 110.",
    ),
    "f_what": Words(id="Apa yang terjadi?", en="What happened?"),
    "f_what_hint": Words(
        id="Ceritakan dengan kata-kata Anda: siapa yang merekrut, janji apa, di mana orangnya "
        "sekarang. Tidak perlu menulis nama Anda.",
        en="In your own words: who recruited, what was promised, where the people are now. "
        "You do not need to give your name.",
    ),
    "f_place": Words(
        id="Di mana? (kabupaten, desa, tempat)", en="Where? (district, village, place)"
    ),
    "f_when": Words(id="Kapan?", en="When?"),
    "f_when_hint": Words(
        id="Contoh: minggu lalu, 3 hari yang lalu", en="E.g. last week, 3 days ago"
    ),
    "f_people": Words(
        id="Berapa orang yang mungkin dalam bahaya?", en="How many people may be at risk?"
    ),
    "f_at_risk": Words(id="Siapa mereka?", en="Who are they?"),
    "f_nationality": Words(id="Kewarganegaraan (jika tahu)", en="Nationality (if known)"),
    "f_exploitation": Words(
        id="Jenis eksploitasi (jika tahu)", en="Kind of exploitation (if known)"
    ),
    "f_unknown": Words(id="Tidak tahu", en="Don't know"),
    "f_danger": Words(id="Ada orang dalam bahaya sekarang", en="Someone is in danger right now"),
    "f_contact_wanted": Words(
        id="Saya bersedia dihubungi kembali", en="I agree to be contacted back"
    ),
    "f_contact": Words(
        id="Cara menghubungi Anda (nomor, email; boleh kosong)",
        en="How to reach you (number, email; may stay empty)",
    ),
    "f_contact_hint": Words(
        id="Hanya koordinator yang dapat membacanya. Tanpa ini, Anda tetap bisa membaca pertanyaan "
        "kami dengan nomor tanda terima.",
        en="Only the coordinators can read it. Without it you can still read our questions with "
        "your receipt number.",
    ),
    "f_send": Words(id="Kirim laporan", en="Send the report"),
    "lapor_error": Words(
        id="Ada isian yang belum benar. Periksa angka dan pilihan, lalu kirim lagi.",
        en="Something in the form is not right. Check the numbers and choices, then send again.",
    ),
    "lapor_error_what": Words(
        id="Tuliskan apa yang terjadi (paling banyak 4.000 huruf).",
        en="Write what happened (at most 4,000 characters).",
    ),
    "check_title": Words(id="Sudah pernah melapor?", en="Reported before?"),
    "check_intro": Words(
        id="Masukkan nomor tanda terima untuk melihat status dan pertanyaan koordinator.",
        en="Enter your receipt number to see the status and the coordinators' questions.",
    ),
    "receipt": Words(id="Nomor tanda terima", en="Receipt number"),
    "check_button": Words(id="Lihat status", en="See the status"),
    "lapor_receipt_unknown": Words(
        id="Nomor ini tidak membuka laporan apa pun. Periksa 20 angkanya.",
        en="This number opens no report. Check its 20 digits.",
    ),
    "lapor_too_many": Words(
        id="Terlalu banyak percobaan. Tunggu satu menit, lalu coba lagi.",
        en="Too many tries. Wait a minute, then try again.",
    ),
    "lapor_pass_expired": Words(
        id="Halaman sudah terlalu lama terbuka. Masukkan nomor tanda terima lagi.",
        en="The page was open too long. Enter your receipt number again.",
    ),
    "receipt_title": Words(id="Laporan Anda sudah diterima", en="Your report has been received"),
    "receipt_once": Words(
        id="Ini nomor tanda terima Anda. Nomor ini hanya ditampilkan SEKALI dan tidak dapat "
        "dipulihkan.",
        en="This is your receipt number. It is shown only ONCE and cannot be recovered.",
    ),
    "receipt_keep": Words(
        id="Tulis di kertas atau hafalkan. Jangan memotret layar jika ponsel ini dipakai "
        "orang lain.",
        en="Write it on paper or learn it. Do not take a screenshot if others use this phone.",
    ),
    "receipt_next": Words(
        id="Kembalilah ke halaman ini dalam 1-2 hari dan masukkan nomornya untuk membaca "
        "pertanyaan koordinator dan menjawabnya.",
        en="Come back to this page in a day or two and enter the number to read the "
        "coordinators' questions and answer them.",
    ),
    "receipt_danger": Words(
        id="Anda menyatakan ada orang dalam bahaya sekarang: koordinator dan gugus tugas sudah "
        "diberi tahu. Jika bisa, telepon juga polisi 110.",
        en="You said someone is in danger now: the coordinators and the task force have been "
        "told. If you can, also call the police on 110.",
    ),
    "receipt_done": Words(id="Selesai, tutup halaman", en="Done, leave this page"),
    "status_title": Words(id="Status laporan Anda", en="Your report's status"),
    "filed_on": Words(id="Dikirim tanggal", en="Sent on"),
    "state_received": Words(
        id="Laporan Anda sudah masuk dan menunggu ditelaah koordinator.",
        en="Your report has arrived and is waiting for the coordinators.",
    ),
    "state_question": Words(
        id="Koordinator mengajukan pertanyaan kepada Anda. Mohon jawab di bawah.",
        en="The coordinators have a question for you. Please answer below.",
    ),
    "state_in-progress": Words(
        id="Laporan Anda sedang ditindaklanjuti oleh instansi terkait.",
        en="Your report is being followed up by the agencies.",
    ),
    "state_referred": Words(
        id="Terima kasih. Laporan Anda membuat seseorang mendapat pertolongan dari instansi "
        "layanan.",
        en="Thank you. Your report led to someone being helped by the services.",
    ),
    "state_closed": Words(
        id="Laporan Anda sudah ditelaah dan ditutup. Terima kasih telah melapor.",
        en="Your report has been looked at and closed. Thank you for reporting.",
    ),
    "thread_title": Words(id="Pertanyaan dan jawaban", en="Questions and answers"),
    "from_coordinator": Words(id="Koordinator", en="Coordinator"),
    "from_you": Words(id="Anda", en="You"),
    "answer": Words(id="Jawaban Anda", en="Your answer"),
    "answer_send": Words(id="Kirim jawaban", en="Send the answer"),
    "lapor_answer_sent": Words(id="Jawaban Anda sudah terkirim.", en="Your answer has been sent."),
    "lapor_answer_error": Words(
        id="Jawaban belum terkirim: tuliskan jawabannya (paling banyak 4.000 huruf).",
        en="The answer was not sent: write it (at most 4,000 characters).",
    ),
    "learn_title": Words(id="Kenali tanda-tandanya", en="Know the signs"),
    "signs_trafficking": Words(id="Tanda perdagangan orang", en="Signs of trafficking"),
    "signs_offer": Words(id="Tanda tawaran kerja palsu", en="Signs of a fraudulent job offer"),
    "safe_migration": Words(id="Bermigrasi dengan aman", en="Migrate safely"),
    "hotlines_title": Words(id="Butuh bantuan sekarang?", en="Need help now?"),
    "private_hint": Words(
        id="Di ponsel bersama, gunakan mode penyamaran (incognito) dan hapus riwayat setelahnya.",
        en="On a shared phone, use a private (incognito) window and clear the history after.",
    ),
    "public_footer": Words(
        id="Laporan tanpa nama. Alamat internet dan jenis perangkat Anda tidak disimpan.",
        en="Anonymous report. Your internet address and device are not recorded.",
    ),
    # the coordinators' pages of public reports
    "public_reports": Words(id="Laporan masyarakat", en="Public reports"),
    "public_report": Words(id="Laporan masyarakat", en="Public report"),
    "no_reports": Words(id="Tidak ada laporan terbuka.", en="No open reports."),
    "danger_now": Words(id="Bahaya sekarang", en="Danger now"),
    "report_state_received": Words(id="Belum ditelaah", en="Not yet triaged"),
    "report_state_question": Words(id="Menunggu jawaban pelapor", en="Waiting for the reporter"),
    "report_state_in-progress": Words(id="Ditindaklanjuti", en="In progress"),
    "report_state_referred": Words(id="Menjadi rujukan", en="Led to a referral"),
    "report_state_closed": Words(id="Ditutup", en="Closed"),
    "report_words": Words(id="Isi laporan", en="What the reporter wrote"),
    "report_contact": Words(id="Kontak pelapor", en="Reporter's contact"),
    "report_no_contact": Words(id="(tidak diberikan)", en="(none given)"),
    "report_viewed_note": Words(
        id="Setiap kali isi laporan dibuka, hal itu dicatat. Jangan meneruskan isi atau kontak.",
        en="Every opening of the report is recorded. Do not forward its words or contact.",
    ),
    "reporter": Words(id="Pelapor", en="Reporter"),
    "no_questions": Words(id="Belum ada pertanyaan.", en="No questions yet."),
    "ask_reporter": Words(
        id="Pertanyaan kepada pelapor (dibaca dengan nomor tanda terimanya)",
        en="A question to the reporter (read with their receipt)",
    ),
    "ask_send": Words(id="Kirim pertanyaan", en="Send the question"),
    "triage": Words(id="Telaah", en="Triage"),
    "acknowledge": Words(id="Tandai sudah ditelaah", en="Mark as acknowledged"),
    "forward_to": Words(
        id="Teruskan ke instansi untuk verifikasi", en="Forward to an agency to verify"
    ),
    "forward": Words(id="Teruskan", en="Forward"),
    "launch_from_report": Words(
        id="Mulai rujukan dari laporan ini", en="Launch a referral from it"
    ),
    "close_reason": Words(id="Tutup dengan alasan", en="Close with a reason"),
    "close_report": Words(id="Tutup laporan", en="Close the report"),
    "intake_from_report": Words(
        id="Rujukan ini dimulai dari laporan masyarakat",
        en="This referral comes from public report",
    ),
    "report_for_step": Words(
        id="Laporan yang perlu diverifikasi (tanpa kontak pelapor)",
        en="The report to verify (without the reporter's contact)",
    ),
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
