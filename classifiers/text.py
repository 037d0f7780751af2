"""Text preparation: what the sender wrote (no quoted history, sign-off or disclaimer).

The model reads `model_text(subject, body)`: the subject plus the newest reply in the body,
with the quoted history, the sign-off and any legal disclaimer removed. Quote and signature
detection is mail-parser-reply's; this module only guards against its over-eager cuts (a
"Sent from my iPhone" line at the top must not swallow the message under it) and removes
disclaimer paragraphs it misses. Nothing here raises: odd input falls back to the raw body.
"""

from __future__ import annotations

import re
import unicodedata

import structlog

from classifiers.quotes import ReplyReader

log = structlog.get_logger("candour.classifier")

# Longer bodies are cut before parsing: the patterns are linear (classifiers/quotes.py), but
# a 10 MB pasted log must not stall a batch, and the first pages say what it is about.
MAX_CHARS = 20_000
# Each extra language roughly adds 0.07 ms a message; UK complaints mailboxes are English.
REPLY_LANGUAGES: tuple[str, ...] = ("en",)
# A sign-off ("Kind regards,\nName\nRole") is short; longer prose in the block that
# mail-parser-reply calls the signature is still what the sender wrote.
_SIGN_OFF_MAX_WORDS = 30

# Separator lines mail clients write above quoted or forwarded mail; never the sender's words.
_SEPARATOR_LINE = re.compile(
    r"^[-_ ]*(?:forwarded message|begin forwarded message:?|original message)[-_ ]*$",
    re.IGNORECASE | re.MULTILINE,
)
# Only these mean "forwarded" ("Original Message" also heads an Outlook reply).
_FORWARDED = re.compile(
    r"^[-_ ]*(?:forwarded message|begin forwarded message:?)[-_ ]*$", re.IGNORECASE | re.MULTILINE
)
# "FYI", "see below": a note this short on a forward says less than what it forwards.
_SHORT_NOTE_WORDS = 12
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Matched against lower-cased text with no leading \b: that lets the regex engine skip
# ahead by first letter, which a case-insensitive or \b-led pattern cannot (5x slower).
_DISCLAIMER_CUES = re.compile(
    r"(?:confidential|intended (?:solely )?for|intended recipient|addressee|"
    r"received (?:it|this|this e-?mail|this message) in error|notify the sender|"
    r"privileged|(?:delete|destroy) (?:it|this|the e-?mail|the message)|"
    r"virus|registered in (?:england|wales|scotland)|registered office|"
    r"authorised and regulated|regulated by|company (?:no|number)|charity (?:no|number)|"
    r"views expressed|monitored|do not (?:use|copy|disclose)|unauthori[sz]ed)"
)
# Each starts at the beginning of a run of its characters (the lookbehinds), so a long run
# with no "@" in it is scanned once, not once from every character.
_EMAIL = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+\s*@\s*[\w-]+(?:\s*\.\s*[\w-]+)+"
)
# Obfuscated forms: "jo [at] example [dot] org", "jo at example dot org".
_BRACKETED_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[\w-]+"
    r"(?:\s*(?:[\[({<]\s*dot\s*[\])}>]|\.)\s*[\w-]+)+",
    re.IGNORECASE,
)
_SPELLED_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)+", re.IGNORECASE
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# A run of digits with the separators people put in phone numbers; counted afterwards.
# Not straight after "CMP-": case references (CMP-2026-00123) are not phone numbers.
_PHONE_CANDIDATE = re.compile(r"(?<![A-Za-z]-)(?:\+|\b00)?\(?\d[\d\s().\-/]{7,24}\d")
_PHONE_MIN_DIGITS = 9
_DIGITS = re.compile(r"\d")


_READER = ReplyReader(REPLY_LANGUAGES, keep_hyphen_lists=True)


def _is_disclaimer(paragraph: str) -> bool:
    """True when a paragraph reads like a legal footer: two or more distinct cues."""
    cues = {m.group(0) for m in _DISCLAIMER_CUES.finditer(paragraph.lower())}
    return len(cues) >= 2


def remove_disclaimers(text: str) -> str:
    """Return `text` without legal-disclaimer paragraphs after the first paragraph."""
    if not _is_disclaimer(text):  # fewer than two cues in the whole text: none anywhere
        return text
    paragraphs = _PARAGRAPH_BREAK.split(text)
    kept = paragraphs[:1] + [p for p in paragraphs[1:] if not _is_disclaimer(p)]
    return "\n\n".join(kept)


def _keep_from_signature(signature: str) -> str:
    """Return the parts of a detected signature block that are prose, not a sign-off."""
    kept = []
    for paragraph in _PARAGRAPH_BREAK.split(signature):
        lines = [line for line in paragraph.splitlines() if not line.lstrip().startswith(">")]
        unquoted = "\n".join(lines).strip()
        if len(unquoted.split()) > _SIGN_OFF_MAX_WORDS and not _is_disclaimer(unquoted):
            kept.append(unquoted)
    return "\n\n".join(kept)


def _reply_body(content: str, headers: str, signature: str) -> str:
    """The reply without its header block, with its sign-off removed but prose kept."""
    body = content.replace(headers, "", 1) if headers else content
    if signature and signature in body:
        before, _, _after = body.partition(signature)
        body = "\n\n".join(p for p in (before.strip(), _keep_from_signature(signature)) if p)
    return _SEPARATOR_LINE.sub("", body).strip()


def sender_text(body: str) -> str:
    """Return what the sender wrote in `body`: the newest reply, without quoted history,
    sign-off or disclaimer. A forward with no note of its own yields the forwarded text.

    Never raises; on any parser failure the (length-capped) raw body is returned.
    """
    capped = body[:MAX_CHARS]
    if not capped.strip():
        return ""
    try:
        message = _READER.read(capped)
        parts = [
            _reply_body(reply.content, reply.headers or "", reply.signatures or "")
            for reply in message.replies
        ]
        parts = [p for p in parts if p]
        if not parts:
            return remove_disclaimers(capped).strip()
        # A bare forward's first part is empty (dropped above), so parts[0] is the forwarded
        # message; a forward with a short note keeps both.
        text = parts[0]
        if len(parts) > 1 and len(text.split()) < _SHORT_NOTE_WORDS and _FORWARDED.search(capped):
            text = f"{text}\n\n{parts[1]}"
        return remove_disclaimers(text).strip()
    except Exception as exc:  # noqa: BLE001 - preparation must never lose a message
        log.warning("classifier.text_fallback", error=type(exc).__name__, chars=len(capped))
        return capped.strip()


def model_text(subject: str, body: str) -> str:
    """Return the text the model reads: the subject, a blank line, then `sender_text(body)`."""
    return f"{subject.strip()}\n\n{sender_text(body)}"


def scan_text(subject: str, body: str) -> str:
    """Return the text safety rules read: subject and the whole (capped) body, quotes included.

    The safety net prefers false alarms, so it also sees quoted and forwarded text.
    """
    return unicodedata.normalize("NFKC", f"{subject}\n{body[: 2 * MAX_CHARS]}")


def scrub_contacts(text: str) -> str:
    """Return `text` with every email address, URL and phone number replaced by a placeholder."""
    for pattern in (_EMAIL, _BRACKETED_EMAIL, _SPELLED_EMAIL):
        text = pattern.sub("[email]", text)
    text = _URL.sub("[link]", text)

    def phone(match: re.Match[str]) -> str:
        digits = len(_DIGITS.findall(match.group(0)))
        return "[phone]" if digits >= _PHONE_MIN_DIGITS else match.group(0)

    return _PHONE_CANDIDATE.sub(phone, text)
