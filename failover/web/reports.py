"""After-action reports (one page and one PDF per activation) and the drills page that compares drills over time.

The page and the PDF render the same template body (``_report_body.html``);
the PDF is that HTML laid out by WeasyPrint, charts included (inline SVG).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from failover.clock import utcnow
from failover.domain import reports as domain_reports
from failover.engine import reports
from failover.web.access import requires
from failover.web.charts import line_chart
from failover.web.views import runtime

bp = Blueprint("reports", __name__)

GROUPS_CHARTED = 8  # the chart shows everyone and the largest groups; the table lists them all


@bp.get("/activations/<id:activation_id>/report")
@requires("viewer")
def report(activation_id: int):  # type: ignore[no-untyped-def]
    return render_template("report.html", **_context(activation_id))


@bp.get("/activations/<id:activation_id>/report.pdf")
@requires("viewer")
def report_pdf(activation_id: int):  # type: ignore[no-untyped-def]
    html = render_template("report_pdf.html", **_context(activation_id))
    pdf = render_pdf(html)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="activation-{activation_id}-report.pdf"'},
    )


@bp.get("/drills")
@requires("viewer")
def drills():  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.database.reading() as session:
        points = reports.drill_history(session, rt.config.catalog_or_none(), rt.config.prices)
    chart = None
    if points:
        reach = [(float(i), p.reach_rate or 0.0) for i, p in enumerate(points)]
        ack = [(float(i), p.ack_rate or 0.0) for i, p in enumerate(points)]
        ticks = [(float(i), p.at.strftime("%d %b")) for i, p in enumerate(points)]
        chart = line_chart(
            {"reached": reach, "acknowledged": ack},
            x_label="drill",
            x_max=float(max(len(points) - 1, 1)),
            steps=False,
            x_ticks=ticks,
            title="Reach and acknowledgement rates by drill",
        )
    schedules = rt.drills.overview()
    return render_template("drills.html", points=list(reversed(points)), chart=chart, schedules=schedules)


def render_pdf(html: str) -> bytes:
    """The report as a PDF (WeasyPrint: needs Pango, which .ci/run and the Dockerfile install)."""
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=_nothing).write_pdf()  # type: ignore[no-any-return]


def _nothing(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The report is self-contained (styles and charts inline): fetch no file and no URL, whatever it names."""
    raise ValueError(f"report PDFs load nothing from outside ({url[:40]})")


def _context(activation_id: int) -> dict[str, Any]:
    rt = runtime()
    catalog = rt.config.catalog_or_none()
    with rt.database.reading() as session:
        head = reports.header(session, activation_id, catalog)
        result = reports.report(session, activation_id, catalog, rt.config.prices)
    return {"h": head, "r": result, "chart": _ack_chart(result), "generated_at": utcnow(), "ALL": domain_reports.ALL}


def _ack_chart(result: domain_reports.Report) -> Any:
    if not result.ack_curves:
        return None
    largest = sorted(
        (g for g in result.ack_curves if g != domain_reports.ALL),
        key=lambda g: (-result.by_group[g].targeted, g),
    )[: GROUPS_CHARTED - 1]
    series = {g: result.ack_curves[g] for g in [domain_reports.ALL, *sorted(largest)] if g in result.ack_curves}
    last = max((x for points in series.values() for x, _ in points), default=0.0)
    return line_chart(
        series,
        x_label="time since the activation was accepted",
        x_max=max(last * 1.05, 60.0),
        title="Acknowledgements over time, per group",
    )


@bp.app_template_filter("seconds")
def _seconds_filter(value: float | None) -> str:
    """12 s, 4 min 05 s, 1 h 02 min; a dash for never."""
    if value is None:
        return "–"
    total = int(round(value))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


@bp.app_template_filter("percent")
def _percent_filter(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"
