"""Shared PDF pipeline: sandboxed Jinja templates rendered from plain dicts, WeasyPrint with a
URL fetcher that refuses everything but embedded ``data:`` URIs, bytes kept in memory.

Usage::

    from rso.pdf import render_pdf, pdf_response
    body = render_pdf("profiling/pdf/slip.html", {"referral": plain_dict})
    return pdf_response(body, "referral-slip.pdf")

Templates get ``fonts`` (the font stack covering Latin, Arabic, Myanmar and Tamil names).
Never pass ORM objects: dump what the document shows into a dict first.
"""
from __future__ import annotations

import base64
import functools
import io

from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from rso.config import REPO_ROOT

PDF_FONTS = '"Noto Sans", "Noto Naskh Arabic", "Noto Sans Myanmar", "Noto Sans Tamil", sans-serif'


class RefusingFetcher:
    """Serves ``data:`` URIs only; file://, http(s):// and relative URLs are refused (and listed
    in ``refused`` so a test can see a template tried)."""

    def __init__(self) -> None:
        from weasyprint import URLFetcher

        self._inner = URLFetcher(allowed_protocols={"data"}, timeout=1)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        if not str(url).startswith("data:"):
            self.refused.append(str(url)[:40])
            raise ValueError("Only embedded data: URIs are allowed in generated documents.")
        return self._inner.fetch(url, headers)

    __call__ = fetch


@functools.cache
def _jinja() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(REPO_ROOT / "templates")),
                               autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals["fonts"] = PDF_FONTS
    return env


def render_html(template: str, context: dict) -> str:
    """The document's HTML (useful in tests and for a print preview)."""
    return _jinja().get_template(template).render(**context)


def render_pdf(template: str, context: dict, *, fetcher: RefusingFetcher | None = None) -> bytes:
    """Render ``templates/<template>`` with the plain ``context`` to PDF bytes, in memory."""
    from weasyprint import HTML

    html = render_html(template, context)
    return HTML(string=html, url_fetcher=fetcher or RefusingFetcher(), base_url="about:blank").write_pdf()


def pdf_response(body: bytes, filename: str, *, inline: bool = True):
    """A Flask response with the PDF ``body`` (shown in the browser, or downloaded), never cached."""
    from flask import Response

    safe = "".join(c for c in filename if c.isalnum() or c in "-_.") or "document.pdf"
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{safe}"',
        "Cache-Control": "no-store",
    })


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG ``data:`` URI."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return data_uri(buf.getvalue(), "image/svg+xml")
