"""Letters for complainants without email: an acknowledgement rendered from its template,
laid out as a printable PDF (fpdf2) for staff to post."""

from __future__ import annotations

from datetime import datetime

from replies.letterhead import Letterhead


def _latin(text: str) -> str:
    """The core PDF fonts read Latin-1: anything else is replaced, never an error."""
    return text.encode("latin-1", "replace").decode("latin-1")


def letter_pdf(
    letterhead: Letterhead, name: str, postal: str, subject: str, body: str, now: datetime
) -> bytes:
    """An A4 letter: the organisation, the complainant's postal address, the date, the
    subject line and the body."""
    from fpdf import FPDF  # 0.23 s and ~20 MB: loaded by the first letter, not at start-up

    pdf = FPDF(format="A4")
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, _latin(letterhead.organisation), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, _latin(letterhead.address), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    for line in [name, *[part.strip() for part in postal.split(",")]]:
        if line:
            pdf.cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.cell(0, 6, _latin(letterhead.local_time(now)[:15]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, _latin(subject), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, _latin(body), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
