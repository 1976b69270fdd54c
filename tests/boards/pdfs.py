"""Real documents for the import tests: PDFs drawn with reportlab, photos with Pillow."""

from __future__ import annotations

import io

from PIL import Image


def worksheet_pdf(pages: int, title: str = "Fiche d'exercices") -> bytes:
    """An A4 portrait worksheet: each page a heading, its number, and a blue band on top."""
    from reportlab.lib.colors import HexColor
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    c = Canvas(out, pagesize=A4)
    w, h = A4
    for n in range(1, pages + 1):
        c.setFillColor(HexColor("#1d4ed8"))
        c.rect(0, h - 90, w, 90, stroke=0, fill=1)
        c.setFillColor(HexColor("#ffffff"))
        c.setFont("Helvetica-Bold", 28)
        c.drawString(40, h - 60, f"{title} — page {n}")
        c.setFillColor(HexColor("#111827"))
        c.setFont("Helvetica", 18)
        for line in range(12):
            c.drawString(50, h - 150 - line * 40, f"Exercice {line + 1} : calculer {n} x {line}")
        c.showPage()
    c.save()
    return out.getvalue()


def phone_photo(orientation: int = 6) -> bytes:
    """A JPEG as a phone stores a portrait shot: the sensor's landscape pixels (800 × 400, red
    on the left half, the top of the scene) and an EXIF tag saying how to turn them."""
    img = Image.new("RGB", (800, 400), (30, 60, 220))  # blue: the bottom of the scene
    img.paste((220, 30, 30), (0, 0, 400, 400))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def content_box(jpeg: bytes) -> tuple[int, int, int, int]:
    """Where a frame is not white (left, top, right, bottom)."""
    img = Image.open(io.BytesIO(jpeg)).convert("L").point(lambda v: 255 if v < 235 else 0)
    box = img.getbbox()
    assert box is not None
    return box
