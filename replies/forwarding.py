"""Which of a stranger's attachments go to staff with their copy, and in what form.

A pure decision on (filename, content type, bytes): programs, scripts and macro documents
(judged by extension, declared type and the first bytes) are withheld, as are files over
the size limits and archives that cannot be listed without unpacking them. Zip archives
are listed from their central directory, never unpacked; an Office file is looked into
only as far as its table of contents (vbaProject.bin, an OLE "VBA" storage). HTML goes
through nh3 (the Ammonia sanitiser): no scripts, styles, event handlers or remote images.
Withheld files stay in the stored raw message, where `candour export` can reach them.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import nh3
from pydantic import BaseModel, ConfigDict, Field

from replies.compose import FileAttachment

# Programs, scripts, installers, shortcuts and active content a mail client may run.
_PROGRAMS = """
exe scr bat cmd com pif cpl msi msp mst msc jar js jse vbs vbe wsf wsh ws hta ps1 psm1 psd1
psc1 lnk reg scf inf dll sys ocx drv appx appxbundle msix msixbundle apk app dmg pkg deb rpm
sh bash csh ksh run bin elf gadget application vb vbscript xbap url chm hlp svg svgz mht
mhtml xsl iqy slk settingcontent-ms
"""
# Office formats that carry macros by design (Word, Excel, PowerPoint, add-ins, OneNote).
_MACRO_DOCUMENTS = "docm dotm xlsm xltm xlsb xlam xla xll pptm potm ppsm ppam ppa sldm wll one"
# Archives and disk images that cannot be listed without unpacking them.
_UNLISTABLE = "rar 7z cab gz tgz bz2 tbz xz txz lz lzh lha ace arj z tar iso img vhd vhdx udf"
PROGRAMS = frozenset(_PROGRAMS.split())
MACRO_DOCUMENTS = frozenset(_MACRO_DOCUMENTS.split())
UNLISTABLE = frozenset(_UNLISTABLE.split())
_TYPES = {
    "application/x-msdownload": "a program",
    "application/x-dosexec": "a program",
    "application/x-msdos-program": "a program",
    "application/x-executable": "a program",
    "application/x-ms-installer": "an installer",
    "application/x-msi": "an installer",
    "application/javascript": "a script",
    "text/javascript": "a script",
    "application/x-sh": "a script",
    "application/hta": "a script",
    "image/svg+xml": "active content (SVG)",
}
_MAGIC = (
    (b"MZ", "a program"),
    (b"\x7fELF", "a program"),
    (b"\xcf\xfa\xed\xfe", "a program"),
    (b"\xce\xfa\xed\xfe", "a program"),
    (b"\xca\xfe\xba\xbe", "a program"),
    (b"#!", "a script"),
    (b"Rar!\x1a\x07", "an archive that cannot be checked without unpacking it"),
    (b"7z\xbc\xaf\x27\x1c", "an archive that cannot be checked without unpacking it"),
    (b"MSCF", "an archive that cannot be checked without unpacking it"),
    (b"\x1f\x8b", "an archive that cannot be checked without unpacking it"),
    (b"BZh", "an archive that cannot be checked without unpacking it"),
    (b"\xfd7zXZ\x00", "an archive that cannot be checked without unpacking it"),
)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_EXTENSIONS = frozenset({"htm", "html", "xhtml", "shtml"})


class AttachmentLimits(BaseModel):
    """`[mailbox.attachments]`: what a staff copy may carry of a stranger's attachments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(default=10_000_000, gt=0)  # one file
    total_bytes: int = Field(default=20_000_000, gt=0)  # all the files of one message
    # Extensions withheld on top of the built-in programs, macro documents and archives.
    also_withhold: tuple[str, ...] = ()


@dataclass(frozen=True)
class Withheld:
    filename: str
    reason: str


@dataclass(frozen=True)
class Forwarding:
    """What goes with the staff copy, and what was withheld and why."""

    kept: tuple[FileAttachment, ...]
    withheld: tuple[Withheld, ...]

    def summary(self) -> str:
        """One line for the staff copy: the files attached, then each withheld one."""
        names = [a.filename for a in self.kept]
        names += [
            f"{w.filename} (withheld: {w.reason}; kept in the case record)" for w in self.withheld
        ]
        return ", ".join(names)


def safe_filename(name: str) -> str:
    """`name` as one harmless file name: no folders, control or format characters (such as
    the right-to-left override that disguises 'exe'), no surrounding dots or blanks."""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    return name[:150] or "attachment"


def extension(filename: str) -> str:
    """The last extension of `filename`, lower-cased, as Windows would read it."""
    return os.path.splitext(safe_filename(filename).lower())[1].lstrip(".")


def _by_name(filename: str, extra: frozenset[str]) -> str | None:
    ext = extension(filename)
    if ext in MACRO_DOCUMENTS:
        return "an Office document with macros"
    if ext in PROGRAMS or ext in extra:
        return "a program or active content"
    if ext in UNLISTABLE:
        return "an archive that cannot be checked without unpacking it"
    return None


def _zip_listing(data: bytes, extra: frozenset[str]) -> str | None:
    """Why a zip (or an Office Open XML file) is withheld, read from its table of contents."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return "an archive that could not be listed"
    for name in names:
        if name.lower().rsplit("/", 1)[-1] == "vbaproject.bin":
            return "an Office document with macros"
    for name in names:
        inside = _by_name(name, extra)
        if inside is not None or extension(name) == "zip":
            return f"an archive holding {safe_filename(name)!r}"
    return None


def _ole_listing(data: bytes) -> str | None:
    """Why an OLE2 file (old Office, MSI) is withheld, read from its directory of streams."""
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            paths = ["/".join(entry).lower() for entry in ole.listdir(streams=True, storages=True)]
    except Exception:  # noqa: BLE001 - a damaged compound file cannot be vouched for
        return "an Office file that could not be checked for macros"
    if any(part in {"vba", "_vba_project_cur", "macros"} for p in paths for part in p.split("/")):
        return "an Office document with macros"
    return None


def why_withheld(
    filename: str, content_type: str, data: bytes, extra: frozenset[str] = frozenset()
) -> str | None:
    """Why this file must not reach staff, or None: by name, declared type, then content."""
    reason = _by_name(filename, extra)
    ctype = content_type.lower()
    if reason is None and "macroenabled" in ctype:
        reason = "an Office document with macros"
    reason = reason or _TYPES.get(ctype)
    if reason is not None:
        return reason
    for magic, what in _MAGIC:
        if data.startswith(magic) and (magic == b"#!" or _binary(data[:64])):
            return what
    if data.startswith(_ZIP):
        return _zip_listing(data, extra)
    if data.startswith(_OLE):
        return _ole_listing(data)
    return None


def _binary(head: bytes) -> bool:
    """Whether `head` is a binary header, not text that happens to begin "MZ" or "BZh"."""
    return any((b < 32 and b not in b"\t\n\x0c\r\x1b") or b == 127 or b > 0xF4 for b in head)


def sanitised_html(html: str) -> str:
    """`html` with only inert markup: no scripts, styles, event handlers, forms or frames,
    and no image that would load anything from elsewhere (a tracking pixel)."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        return None if tag == "img" and attribute in {"src", "srcset"} else value

    return nh3.clean(html, attribute_filter=keep, link_rel="noopener noreferrer nofollow")


def _is_html(filename: str, content_type: str) -> bool:
    return content_type.lower() in _HTML_TYPES or extension(filename) in _HTML_EXTENSIONS


DEFAULT_LIMITS = AttachmentLimits()


def forwardable(
    files: Sequence[tuple[str, str, bytes]], limits: AttachmentLimits = DEFAULT_LIMITS
) -> Forwarding:
    """Split `files` (filename, content type, bytes) into those staff receive (HTML
    sanitised, names made safe) and those withheld, each with its reason."""
    extra = frozenset(e.lower().lstrip(".") for e in limits.also_withhold)
    kept: list[FileAttachment] = []
    withheld: list[Withheld] = []
    total = 0
    for raw_name, content_type, data in files:
        filename = safe_filename(raw_name)
        reason = why_withheld(filename, content_type, data, extra)
        if reason is None and len(data) > limits.max_bytes:
            reason = f"{_megabytes(len(data))}, over the {_megabytes(limits.max_bytes)} limit"
        if reason is None and total + len(data) > limits.total_bytes:
            reason = f"the files together are over {_megabytes(limits.total_bytes)}"
        if reason is not None:
            withheld.append(Withheld(filename, reason))
            continue
        total += len(data)
        if _is_html(filename, content_type):
            text = sanitised_html(data.decode("utf-8", "replace"))
            kept.append(FileAttachment(filename, "text/html", text.encode("utf-8")))
        else:
            kept.append(FileAttachment(filename, content_type, data))
    return Forwarding(tuple(kept), tuple(withheld))


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
