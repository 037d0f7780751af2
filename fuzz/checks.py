"""Is an outgoing message valid? Read back as a receiving MTA and mail client would."""

from __future__ import annotations

import email
import email.errors
import email.policy
import email.utils
import re

from daemon.mail.parse import ParsedMessage
from replies.compose import OutgoingMail

# Defects that mean the header block was not what the composer meant it to be: a line
# that is no header (an injected line break), or a header block that starts folded.
INJECTION_DEFECTS = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
    email.errors.MisplacedEnvelopeHeaderDefect,
)
# Every header an acknowledgement may carry, each at most once.
EXPECTED = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "x-auto-response-suppress",
        "x-loop",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
_FOLD = re.compile(rb"\r\n[ \t]")


def problems_in(
    reply: OutgoingMail, original: ParsedMessage, own: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """What is wrong with `reply`, composed in answer to `original` by the mailbox whose
    addresses are `own` (empty: nothing)."""
    head = reply.raw.split(b"\r\n\r\n", 1)[0]
    problems = [*_raw_lines(head)]
    message = email.message_from_bytes(reply.raw, policy=email.policy.default)
    problems.extend(
        f"defect:{type(d).__name__}" for d in message.defects if isinstance(d, INJECTION_DEFECTS)
    )
    names = [name.lower() for name in message]
    problems.extend(f"unexpected-header:{n}" for n in sorted(set(names) - EXPECTED))
    problems.extend(
        f"repeated-header:{n}" for n in sorted({n for n in names if names.count(n) > 1})
    )
    for name, value in message.items():
        if "\r" in str(value) or "\n" in str(value):
            problems.append(f"line-break-in-value:{name.lower()}")
    problems.extend(_recipients(message, reply, original))
    if reply.recipient.lower() in own:
        problems.append("reply-to-own-address")
    return tuple(problems)


def _raw_lines(head: bytes) -> list[str]:
    """Each header, unfolded, is one line of printable ASCII with a name and a colon."""
    problems = []
    for line in _FOLD.sub(b" ", head).split(b"\r\n"):
        if b"\r" in line or b"\n" in line:
            problems.append("bare-line-break-in-header")
        if not line.isascii():
            problems.append("8-bit-header")
        if b":" not in line or not re.fullmatch(rb"[!-9;-~]+", line.split(b":", 1)[0]):
            problems.append("header-line-without-a-name")
    return problems


def _recipients(
    message: email.message.EmailMessage, reply: OutgoingMail, original: ParsedMessage
) -> list[str]:
    """To names exactly the address the reply goes to, which the sender gave; no Cc/Bcc."""
    if message.get_all("cc") or message.get_all("bcc"):
        return ["cc-or-bcc"]
    addresses = [a for _, a in email.utils.getaddresses(message.get_all("to") or [])]
    problems = []
    if addresses != [reply.recipient]:
        problems.append("to-is-not-the-recipient")
    if reply.recipient not in {original.sender, original.reply_to}:
        problems.append("recipient-is-not-the-sender")
    return problems
