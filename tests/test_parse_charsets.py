"""Mail as Outlook and Japanese phones send it: ISO-2022-JP bodies and TNEF (winmail.dat)."""

from __future__ import annotations

import email
from email.message import EmailMessage
from pathlib import Path

from daemon.mail.parse import parse_message


def test_iso_2022_jp_with_its_charset_on_a_folded_line_is_read(corpus: Path) -> None:
    raw = (corpus / "public/mikel-mail/japanese_iso_2022.eml").read_bytes()
    assert b"charset=iso-2022-jp" in raw  # on a continuation line of Content-Type
    parsed = parse_message(raw)
    assert parsed.text == "すみません。"
    assert "\x1b" not in parsed.text


def test_a_body_only_inside_winmail_dat_is_read_with_its_attachments(corpus: Path) -> None:
    original = email.message_from_bytes((corpus / "public/mimekit/ukr.eml").read_bytes())
    [tnef] = [p for p in original.walk() if p.get_filename() == "winmail.dat"]
    data = tnef.get_payload(decode=True)
    assert isinstance(data, bytes)
    message = EmailMessage()
    message["From"] = "Outlook User <user@example.net>"
    message["To"] = "complaints@example.org"
    message["Subject"] = "Complaint"
    message.set_content("")
    message.add_attachment(data, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    parsed = parse_message(bytes(message))
    assert "RR Test 1" in parsed.text  # the body Outlook put only inside winmail.dat
    assert parsed.text.count("RR Test 1") == 1


def test_half_width_katakana_and_a_raw_subject_in_iso_2022_jp_are_read() -> None:
    words = "ｶﾀｶﾅで書きました。苦情です。"
    raw = (
        b"From: Taro <taro@example.jp>\r\nTo: complaints@example.org\r\n"
        b"Subject: " + "苦情".encode("iso2022_jp") + b"\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        + words.encode("iso2022_jp_ext")
        + b"\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == words
    assert parsed.subject == "苦情"
