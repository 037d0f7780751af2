"""Outgoing mail safe by construction (issue 24, item 3).

Header injection through encoded words, HTML and attachments in staff copies, from the
pure functions to the daemon running against the real Dovecot and SMTP sink.
"""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import olefile
import pytest

from daemon.mail.parse import attachment_files, message_ids, parse_message
from replies.addresses import is_plain_address
from replies.compose import build
from replies.forwarding import AttachmentLimits, forwardable, sanitised_html, why_withheld
from replies.letterhead import Letterhead
from tests.conftest import Setup
from tests.mailstack import Received, write_config

INJECTED_FROM = (
    b"From: =?utf-8?q?Victim=0D=0ATo:_victim2@evil.example?= <a@b.example>\r\n"
    b"To: complaints@example.org\r\n"
    b"Subject: =?utf-8?q?Complaint=0D=0ABcc:_victim3@evil.example?=\r\n"
    b"Message-ID: <inject-1@b.example>\r\n"
    b"\r\n"
    b"I am making a formal complaint about the way my appointment was cancelled.\r\n"
)
LETTERHEAD = Letterhead("complaints@example.org", "Example Trust", "Europe/London")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _headers(raw: bytes) -> list[tuple[str, str]]:
    return [(k.lower(), str(v)) for k, v in message_from_bytes(raw).items()]


# --- what the parser hands on -----------------------------------------------------------


@pytest.mark.parametrize(
    "from_header",
    [
        "=?utf-8?q?Victim=0D=0ATo:_victim2@evil.example?= <a@b.example>",
        "=?utf-8?q?victim@evil.example=0D=0Ax-injected?= <a@b.example>",
        "=?utf-8?b?VmljdGltDQpUbzogdmljdGltMkBldmlsLmV4YW1wbGU=?= <a@b.example>",
        "=?utf-8?q?x=3A_victim2@evil.example_?= <a@b.example>",
    ],
)
def test_the_sender_is_the_addr_spec_never_decoded_text(from_header: str) -> None:
    raw = f"From: {from_header}\r\nTo: complaints@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    parsed = parse_message(raw.encode())
    assert parsed.sender == "a@b.example"
    assert "\r" not in parsed.sender_name
    assert "\n" not in parsed.sender_name


def test_an_encoded_word_standing_for_an_address_gives_no_address() -> None:
    raw = (
        b"From: =?utf-8?q?victim@evil.example=0D=0Ax-injected?=\r\n"
        b"Reply-To: =?utf-8?q?Victim=0D=0ATo:_victim2@evil.example?= <c@b.example>\r\n"
        b"To: complaints@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.sender == ""
    assert parsed.reply_to == "c@b.example"


def test_a_name_shaped_like_the_parsers_placeholder_is_only_a_name() -> None:
    raw = b"From: ENCODEDWORD7X <a@b.example>\r\nSubject: x\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert (parsed.sender_name, parsed.sender) == ("ENCODEDWORD7X", "a@b.example")


def test_display_names_still_decode() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@example.net>\r\n"
        b'To: "Smith, John" <john@example.org>, =?utf-8?q?A?= =?utf-8?q?nn?= <ann@example.org>\r\n'
        b"Subject: =?utf-8?q?Beschwerde=0D=0A?=\r\n\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert (parsed.sender_name, parsed.sender) == ("Jörg Müller", "jorg@example.net")
    assert parsed.recipients == ("john@example.org", "ann@example.org")
    assert parsed.subject == "Beschwerde"


def test_message_ids_are_only_printable_ascii_without_blanks() -> None:
    assert message_ids("<ok@example.net> <a\x00b@x> <ünï@x> <c@d>") == ("ok@example.net", "c@d")
    assert message_ids("bare@example.net") == ("bare@example.net",)
    assert message_ids("not an id\r\nBcc: x@evil.example") == ()


@pytest.mark.parametrize(
    ("address", "plain"),
    [
        ("jane.citizen@example.net", True),
        ("o'brien+case@mail.example.co.uk", True),
        ("jörg@bücher.example", True),
        ("_victim2@evil.example?=", False),
        ("=?utf-8?q?victim@evil.example", False),
        ("a@b.example\r\nBcc: c@d.example", False),
        ('"quoted"@example.net', False),
        ("two@a.example, three@b.example", False),
        ("nodomain@localhost", False),
    ],
)
def test_plain_addresses(address: str, plain: bool) -> None:
    assert is_plain_address(address) is plain


# --- what compose writes ----------------------------------------------------------------


def test_compose_writes_no_header_from_line_breaks_in_its_inputs() -> None:
    mail = build(
        kind="acknowledgement",
        letterhead=LETTERHEAD,
        recipient="a@b.example",
        subject="Re: Complaint\r\nBcc: victim@evil.example",
        body="Thank you.",
        now=NOW,
        message_id="ack-1@example.org",
        in_reply_to="orig@b.example>\r\nBcc: <victim@evil.example",
        references=["good@b.example", "bad\r\nX-Injected: yes", "<also bad>"],
        display_name="Candour\r\nBcc: victim@evil.example",
    )
    names = [name for name, _ in _headers(mail.raw)]
    assert "bcc" not in names
    assert "x-injected" not in names
    assert names.count("to") == 1
    message = message_from_bytes(mail.raw)
    assert message["To"] == "a@b.example"
    assert "In-Reply-To" not in message
    assert message["References"] == "<good@b.example>"
    assert message["Subject"] == "Re: Complaint Bcc: victim@evil.example"


@pytest.mark.parametrize(
    "recipient",
    [
        "victim@evil.example\r\nBcc: x@evil.example",
        "a@b.example, c@d.example",
        "Jane <a@b.example>",
    ],
)
def test_compose_refuses_a_recipient_that_is_not_one_plain_address(recipient: str) -> None:
    with pytest.raises(ValueError, match="not one plain address"):
        build(
            kind="acknowledgement",
            letterhead=LETTERHEAD,
            recipient=recipient,
            subject="x",
            body="x",
            now=NOW,
            message_id="ack-2@example.org",
        )


# --- what goes to staff -----------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


_FREE, _END, _FAT, _NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    right: int = _NONE
    start: int = _END


def _compound_file(streams: dict[str, bytes]) -> bytes:
    """A real OLE2 compound file (CFB v3, 512-byte sectors) holding `streams` ("A/B/name":
    bytes, each padded to 4096 so no mini stream is needed): what old Office writes, made
    here because olefile only reads. Children of a storage are chained as right siblings."""
    entries = [_Entry("Root Entry", 5)]
    index = {"": 0}
    for path, data in streams.items():
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key not in index:
                leaf = depth == len(parts)
                index[key] = len(entries)
                entries.append(_Entry(parts[depth - 1], 2 if leaf else 1, data if leaf else b""))
                entries[index["/".join(parts[: depth - 1])]].children.append(index[key])
    dir_sectors = (len(entries) + 3) // 4
    fat = [_FAT] + [i + 2 for i in range(dir_sectors - 1)] + [_END]
    body = b""
    for entry in entries:
        entry.data = entry.data.ljust(4096, b"\0") if entry.kind == 2 else b""
        count = len(entry.data) // 512
        if count:
            entry.start = len(fat)
            fat += [len(fat) + i + 1 for i in range(count - 1)] + [_END]
        body += entry.data
        for left, right in itertools.pairwise(entry.children):
            entries[left].right = right
    assert len(fat) <= 128
    directory = b""
    for entry in entries:
        name = entry.name.encode("utf-16-le") + b"\0\0"
        child = entry.children[0] if entry.children else _NONE
        directory += name.ljust(64, b"\0")
        directory += struct.pack("<HBBIII", len(name), entry.kind, 1, _NONE, entry.right, child)
        directory += b"\0" * 36 + struct.pack("<IQ", entry.start, len(entry.data))
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
    header += struct.pack("<HHHHH6x9I", 0x3E, 3, 0xFFFE, 9, 6, 0, 1, 1, 0, 4096, _END, 0, _END, 0)
    header += struct.pack("<I", 0) + struct.pack("<I", _FREE) * 108
    fat_sector = b"".join(struct.pack("<I", f) for f in fat).ljust(512, b"\xff")
    return header + fat_sector + directory.ljust(dir_sectors * 512, b"\0") + body


def _ole(*, with_macros: bool) -> bytes:
    streams = {"WordDocument": b"x" * 64, "\x01CompObj": b"c"}
    if with_macros:
        streams["Macros/VBA/dir"] = b"y" * 64
    return _compound_file(streams)


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "reason"),
    [
        ("invoice.exe", "application/octet-stream", b"MZ\x90\x00", "a program or active content"),
        ("invoice.pdf", "application/pdf", b"MZ\x90\x00rest", "a program"),
        ("photo.jpg.scr", "image/jpeg", b"\xff\xd8\xff", "a program or active content"),
        ("run\u202egpj.exe", "image/jpeg", b"\xff\xd8\xff", "a program or active content"),
        ("notes.js", "text/plain", b"alert(1)", "a program or active content"),
        ("x.txt", "application/x-msdownload", b"hello", "a program"),
        ("report.docm", "application/octet-stream", DOCX, "an Office document with macros"),
        (
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            _zip({"word/document.xml": b"<w/>", "word/vbaProject.bin": b"vba"}),
            "an Office document with macros",
        ),
        ("photos.zip", "application/zip", _zip({"a.jpg": b"1", "b.exe": b"MZ"}), "b.exe"),
        ("photos.zip", "application/zip", _zip({"inner.zip": _zip({"a": b"1"})}), "inner.zip"),
        ("photos.rar", "application/octet-stream", b"Rar!\x1a\x07\x00", "unpacking"),
        ("renamed.pdf", "application/pdf", b"7z\xbc\xaf\x27\x1c\x00", "unpacking"),
        ("drawing.svg", "image/svg+xml", b"<svg onload='x()'/>", "active content"),
    ],
)
def test_programs_macros_and_unlistable_archives_are_withheld(
    filename: str, content_type: str, data: bytes, reason: str
) -> None:
    withheld = why_withheld(filename, content_type, data)
    assert withheld is not None
    assert reason in withheld


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("letter.pdf", "application/pdf", PDF),
        ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0JFIF"),
        ("report.docx", "application/octet-stream", DOCX),
        ("photos.zip", "application/zip", _zip({"a.jpg": b"1", "b.png": b"2"})),
        ("notes.txt", "text/plain", b"MZ is my initials, and this is my statement."),
        ("data.xml", "application/xml", b"<?xml version='1.0'?><x/>"),
    ],
)
def test_ordinary_files_go_to_staff(filename: str, content_type: str, data: bytes) -> None:
    assert why_withheld(filename, content_type, data) is None


def test_an_old_office_file_with_a_vba_storage_is_withheld() -> None:
    clean = _ole(with_macros=False)
    macros = _ole(with_macros=True)
    assert olefile.isOleFile(clean)
    assert why_withheld("letter.doc", "application/msword", clean) is None
    assert why_withheld("letter.doc", "application/msword", macros) == (
        "an Office document with macros"
    )
    assert why_withheld("letter.doc", "application/msword", clean[:600]) is not None


def test_size_limits_withhold_with_the_reason_and_keep_the_rest() -> None:
    limits = AttachmentLimits(max_bytes=1000, total_bytes=1500)
    files = [
        ("big.jpg", "image/jpeg", b"\xff" * 1001),
        ("one.jpg", "image/jpeg", b"\xff" * 900),
        ("two.jpg", "image/jpeg", b"\xff" * 700),
        ("three.jpg", "image/jpeg", b"\xff" * 500),
        ("setup.exe", "application/octet-stream", b"MZ"),
    ]
    forwarding = forwardable(files, limits)
    assert [a.filename for a in forwarding.kept] == ["one.jpg", "three.jpg"]
    assert [(w.filename, w.reason) for w in forwarding.withheld] == [
        ("big.jpg", "0.0 MB, over the 0.0 MB limit"),
        ("two.jpg", "the files together are over 0.0 MB"),
        ("setup.exe", "a program or active content"),
    ]
    summary = forwarding.summary()
    assert summary.startswith("one.jpg, three.jpg, big.jpg (withheld: ")
    assert "setup.exe (withheld: a program or active content; kept in the case record)" in summary
    extra = forwardable(
        [("scan.pdf", "application/pdf", PDF)], AttachmentLimits(also_withhold=(".PDF",))
    )
    assert extra.kept == ()


HOSTILE_HTML = (
    '<html><head><style>body{background:url("https://track.example/bg")}</style>'
    '<script>document.location="https://evil.example"</script></head>'
    '<body onload="steal()"><p style="color:red">My complaint</p>'
    '<img src="https://track.example/pixel.gif?id=42" width="1" height="1">'
    '<img srcset="https://track.example/2x.gif 2x" alt="chart">'
    '<a href="javascript:alert(1)">click</a> <a href="https://nhs.example/info">info</a>'
    '<iframe src="https://evil.example/frame"></iframe>'
    '<form action="https://evil.example/post"><input name="password"></form></body></html>'
)


def test_html_is_sanitised_with_no_remote_image_script_style_or_handler() -> None:
    clean = sanitised_html(HOSTILE_HTML)
    assert "My complaint" in clean
    assert 'href="https://nhs.example/info"' in clean
    for gone in (
        "track.example",
        "<script",
        "<style",
        "onload",
        "style=",
        "javascript:",
        "<iframe",
    ):
        assert gone not in clean
    assert "<form" not in clean
    assert "<input" not in clean
    [kept] = forwardable([("page.html", "text/html", HOSTILE_HTML.encode())]).kept
    assert kept.data.decode() == clean


def _with_attachments(body_html: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Citizen <jane.attach@example.net>"
    message["To"] = "complaints@example.org"
    message["Subject"] = "Complaint about the discharge"
    message["Message-ID"] = "<attach-1@example.net>"
    message.set_content(
        "I am making a formal complaint. My mother was discharged at 11pm without her "
        "medication. I want an explanation and an apology."
    )
    if body_html is not None:
        message.add_alternative(body_html, subtype="html")
    message.add_attachment(
        b"\xff\xd8\xff\xe0JFIF", maintype="image", subtype="jpeg", filename="ward.jpg"
    )
    message.add_attachment(
        b"MZ\x90\x00" + b"\x00" * 64, maintype="application", subtype="pdf", filename="letter.pdf"
    )
    message.add_attachment(
        _zip({"word/document.xml": b"<w/>", "word/vbaProject.bin": b"v"}),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="timeline.docx",
    )
    message.add_attachment(
        HOSTILE_HTML.encode(), maintype="text", subtype="html", filename="page.html"
    )
    return bytes(message)


def test_attachment_files_lists_every_file_without_opening_archives() -> None:
    files = attachment_files(_with_attachments())
    assert [name for name, _, _ in files] == [
        "ward.jpg",
        "letter.pdf",
        "timeline.docx",
        "page.html",
    ]


# --- the daemon, end to end -------------------------------------------------------------

ROUTES = """
staff_domains = ["example.org"]
[mailbox.routes]
complaint = "team@example.org"
review = "triage@example.org"
"""


def _configure(setup: Setup) -> None:
    write_config(
        setup.config_path,
        imap_port=setup.dovecot.port,
        user=setup.user,
        address=setup.address,
        smtp_port=setup.sink.port,
        db_url=f"sqlite:///{setup.db_path}",
        extra_mailbox=ROUTES,
    )


def _run(setup: Setup) -> None:
    result = setup.cli("run", "--once", check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def _staff_copy(setup: Setup) -> tuple[Received, EmailMessage]:
    [copy] = [
        m for m in setup.outgoing() if set(m.rcpt_tos) & {"team@example.org", "triage@example.org"}
    ]
    message = message_from_bytes(copy.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return copy, message


def test_the_daemon_acknowledges_only_the_addr_spec_of_an_injected_from(setup: Setup) -> None:
    _configure(setup)
    setup.append(INJECTED_FROM)
    _run(setup)
    sent = setup.outgoing()
    everyone = sorted(r for m in sent for r in m.rcpt_tos)
    assert "a@b.example" in everyone
    assert not [r for r in everyone if "evil" in r or "injected" in r]
    [ack] = [m for m in sent if m.rcpt_tos == ["a@b.example"]]
    names = [name for name, _ in _headers(ack.data)]
    assert names.count("to") == 1
    assert "bcc" not in names
    assert message_from_bytes(ack.data)["To"] == "a@b.example"


def test_the_staff_copy_carries_safe_attachments_and_notes_what_was_withheld(setup: Setup) -> None:
    _configure(setup)
    setup.append(_with_attachments(HOSTILE_HTML))
    _run(setup)
    copy, message = _staff_copy(setup)
    assert copy.data.count(b"track.example") == 0  # no tracking pixel, in body or attachment
    assert b"<script" not in copy.data
    parts = {str(part.get_filename()): part for part in message.iter_attachments()}
    assert sorted(parts) == ["page.html", "ward.jpg"]
    html = parts["page.html"].get_content()
    assert "My complaint" in html
    assert "onload" not in html
    assert [p.get_content_type() for p in message.walk() if not p.is_multipart()].count(
        "text/html"
    ) == 1
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = " ".join(body.get_content().split())
    assert "letter.pdf (withheld: a program; kept in the case record)" in text
    assert (
        "timeline.docx (withheld: an Office document with macros; kept in the case record)" in text
    )
    history = setup.cli("cases", "show", setup.cases()[0]["reference"]).stdout  # type: ignore[arg-type]
    assert "attachments.withheld" in history


def test_japanese_mail_reaches_staff_as_japanese(setup: Setup) -> None:
    _configure(setup)
    words = "苦情があります。ｶﾀｶﾅで書きました。対応が遅すぎます。"
    raw = (
        b"From: Taro <taro@example.jp>\r\nTo: complaints@example.org\r\n"
        b"Subject: =?ISO-2022-JP?B?GyRCS0c+cBsoQg==?=\r\nMessage-ID: <jp-1@example.jp>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        + words.encode("iso2022_jp_ext")
        + b"\r\n"
    )
    setup.append(raw)
    _run(setup)
    _, message = _staff_copy(setup)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert words in text
    assert "$B" not in text
    assert "\x1b" not in text


def test_a_web_form_address_that_is_not_plain_is_not_replied_to() -> None:
    from daemon.triage.intake import reply_address

    raw = (
        b"From: Web Form <forms@example.org>\r\nTo: complaints@example.org\r\nSubject: x\r\n\r\n"
        b"Name: Jane\r\nEmail: =?utf-8?q?jane@x.example?=\r\nMessage: complaint\r\n"
    )
    assert reply_address(parse_message(raw), frozenset(), "Email") == "forms@example.org"
    good = raw.replace(b"=?utf-8?q?jane@x.example?=", b"jane@x.example")
    assert reply_address(parse_message(good), frozenset(), "Email") == "jane@x.example"
