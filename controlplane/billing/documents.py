"""A statement as JSON, CSV and PDF.

PDF: fpdf2 — pure Python (no system libraries, unlike WeasyPrint's Pango/Cairo), maintained,
and a statement is a table, which is exactly what it draws; reportlab would also do, but its
wider API buys nothing here.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from controlplane.billing.statements import Month, Statement, daily_lines

CSV_HEADER = [
    "date",
    "cluster_id",
    "cluster_name",
    "compute_plane_id",
    "instance_type",
    "role",
    "purchase_option",
    "node_hours",
    "estimated_node_hours",
    "compute_unit_hours",
    "price_book",
    "unit_price_cents",
    "amount_cents_exact",
]
LINES_PER_PAGE = 36  # with the header and totals, an A4 landscape page
FOUR = Decimal("0.0001")


def as_json(s: Statement, *, with_amounts: bool = True) -> dict[str, Any]:
    lines = []
    for line in s.lines:
        item: dict[str, Any] = {
            "cluster": {"id": line.cluster_id, "name": s.cluster_names.get(line.cluster_id, "")},
            "compute_plane": line.compute_plane_id,
            "instance_type": line.instance_type,
            "role": line.role,
            "purchase_option": line.purchase_option,
            "price_book": line.price_book,
            "node_hours": str(line.node_hours.quantize(FOUR)),
            "estimated_node_hours": str((Decimal(line.estimated_seconds) / 3600).quantize(FOUR)),
            "compute_unit_hours": str(line.compute_unit_hours.quantize(FOUR)),
        }
        if with_amounts:
            item["unit_price_cents"] = str(line.unit_price_cents)
            item["amount_cents"] = line.amount_cents
            item["aws_estimate_cents"] = line.aws_estimate_cents
        lines.append(item)
    body: dict[str, Any] = {
        "organization": {
            "id": s.organization.pk,
            "slug": s.organization.slug,
            "name": s.organization.name,
        },
        "month": str(s.month),
        "time_zone": s.time_zone,
        "period": {"start": s.start.isoformat(), "end": s.end.isoformat()},
        "status": "final" if s.final else "month_to_date",
        "as_of": s.as_of.isoformat(),
        "currency": s.currency,
        "lines": lines,
    }
    if with_amounts:
        body.update(
            {
                "subtotal_cents": s.subtotal_cents,
                "discount": {"percent": str(s.discount_percent), "cents": s.discount_cents},
                "credits": [
                    {"id": c.id, "reason": c.reason, "cents": c.amount_cents} for c in s.credits
                ],
                "credits_cents": s.credits_cents,
                "total_cents": s.total_cents,
                "forecast_total_cents": s.forecast_total_cents,
                "aws_estimate_cents": s.aws_estimate_cents,
                "notes": s.notes,
            }
        )
    return body


def as_csv(organization: Any, month: Month) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_HEADER, lineterminator="\r\n")
    writer.writeheader()
    for row in daily_lines(organization, month):
        writer.writerow(row)
    return out.getvalue()


def money(cents: int | None, currency: str) -> str:
    if cents is None:
        return "-"
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d} {currency}"


def _latin(text: str) -> str:
    # The PDF's built-in fonts are Latin-1; anything else is shown as '?', never an error.
    return text.encode("latin-1", "replace").decode("latin-1")


class _Document(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.doc_title = title
        self.set_auto_page_break(auto=True, margin=15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, _latin(f"{self.doc_title} - page {self.page_no()}"), align="R")


COLUMNS = [  # (title, width in mm, alignment); 274 mm fill an A4 landscape page's text width
    ("Cluster", 66, "L"),
    ("Instance type", 26, "L"),
    ("Role", 22, "L"),
    ("Purchase", 20, "L"),
    ("Node-hours", 26, "R"),
    ("of which estimated", 30, "R"),
    ("Compute-unit-hours", 30, "R"),
    ("Unit price (cents)", 26, "R"),
    ("Amount", 28, "R"),
]
_AMOUNT_AT = sum(width for _n, width, _a in COLUMNS[:-1])


def _hours(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def _price(cents: Decimal) -> str:
    """At least two decimals, up to the price book's four: 5.00, 5.125, 4.8333."""
    whole, _, part = f"{cents.quantize(FOUR):f}".partition(".")
    return f"{whole}.{part.rstrip('0').ljust(2, '0')}"


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width - 2:
        return text
    while text and pdf.get_string_width(text + "...") > width - 2:
        text = text[:-1]
    return text + "..."


def as_pdf(s: Statement) -> bytes:
    org = s.organization
    title = f"Lakeplane statement {s.month} - {org.name}"
    pdf = _Document(_latin(title))
    pdf.set_title(_latin(title))
    pdf.set_author("Lakeplane")
    chunks = [s.lines[i : i + LINES_PER_PAGE] for i in range(0, len(s.lines), LINES_PER_PAGE)]
    for index, chunk in enumerate(chunks or [[]]):
        pdf.add_page()
        if index == 0:
            pdf.set_font("Helvetica", "B", 11)
            pdf.cell(0, 6, "Lakeplane", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", size=8)
            pdf.cell(
                0,
                4,
                _latin(f"Issued {s.as_of:%Y-%m-%d %H:%M} UTC"),
                align="R",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
            pdf.set_font("Helvetica", "B", 16)
            pdf.cell(0, 9, _latin(f"Statement for {org.name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", size=10)
            status = "final" if s.final else f"month to date, as of {s.as_of:%Y-%m-%d %H:%M} UTC"
            for text in (
                f"Organization: {org.name} ({org.slug}, {org.pk})",
                f"Period: {s.month} in {s.time_zone} ({s.start:%Y-%m-%d %H:%M} to "
                f"{s.end:%Y-%m-%d %H:%M} UTC), {status}",
            ):
                pdf.cell(0, 6, _latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(3)
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_fill_color(235, 235, 235)
        for name, width, align in COLUMNS:
            pdf.cell(width, 6, name, border=1, align=align, fill=True)
        pdf.ln()
        pdf.set_font("Helvetica", size=8)
        for line in chunk:
            name = s.cluster_names.get(line.cluster_id, "")
            cells = [
                f"{name} ({line.cluster_id})" if name else line.cluster_id,
                line.instance_type,
                line.role,
                line.purchase_option.replace("_", "-"),
                _hours(line.node_hours),
                _hours(Decimal(line.estimated_seconds) / 3600) if line.estimated_seconds else "",
                _hours(line.compute_unit_hours),
                _price(line.unit_price_cents),
                money(line.amount_cents, s.currency),
            ]
            for (_name, width, align), text in zip(COLUMNS, cells, strict=True):
                pdf.cell(width, 4, _fit(pdf, _latin(text), width), border=1, align=align)
            pdf.ln()
    pdf.ln(3)
    totals = [
        ("Subtotal", money(s.subtotal_cents, s.currency)),
        (f"Discount ({s.discount_percent.normalize():f} %)", money(-s.discount_cents, s.currency)),
        ("Credits", money(-s.credits_cents, s.currency)),
        ("Total", money(s.total_cents, s.currency)),
    ]
    if s.forecast_total_cents is not None:
        totals.append(("Forecast for the month", money(s.forecast_total_cents, s.currency)))
    totals.append(
        ("Your own AWS cost for these nodes (estimate)", money(s.aws_estimate_cents, "USD"))
    )
    for label, value in totals:
        bold = label == "Total"
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.set_x(pdf.l_margin + _AMOUNT_AT - 100)
        pdf.cell(100, 6, _latin(label), align="R", border="T" if bold else 0)
        pdf.cell(
            COLUMNS[-1][1],
            6,
            _latin(value),
            align="R",
            border="T" if bold else 0,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(4)
    pdf.set_font("Helvetica", size=7)
    for note in s.notes.values():
        pdf.multi_cell(0, 4, _latin(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
