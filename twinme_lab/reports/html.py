"""Export an executed report notebook to one standalone HTML page without code.

nbconvert's ``lab`` template loads require.js, MathJax and Mermaid from CDNs. The
report needs none of them, and require.js would stop the embedded plotly.js from
defining ``window.Plotly``, so the template used here drops those three script
blocks. Code cells and prompts are left out; only outputs and text remain.

When the notebook has charts whose HTML lacks plotly.js (see
:func:`twinme_lab.reports.figures.leave_plotlyjs_to_page`), the page gets the
plotly.js of the installed plotly package in its head, before any chart calls
it, so it still draws offline.
"""

from __future__ import annotations

import threading
from pathlib import Path

import jinja2
import nbformat
import plotly.offline
from nbconvert import HTMLExporter

_TEMPLATE_NAME = "twinme_report.html.j2"

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"

# Extends nbconvert's lab page, empties its CDN script blocks and puts plotly.js
# where require.js was when the charts need it.
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{%- if resources.plotlyjs -%}
<script type="text/javascript">{{ resources.plotlyjs }}</script>
{%- endif -%}
{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


# One exporter per thread: an exporter compiles its Jinja templates on first use,
# so a reused one took 0.08 to 0.12 s of CPU per page against 0.16 s for a new
# one. nbconvert's exporters are not documented as safe to share between threads.
_cached = threading.local()


def exporter() -> HTMLExporter:
    """Return this thread's HTML exporter that writes outputs only, with no CDN
    scripts. It is created on the first call and reused afterwards."""
    html = getattr(_cached, "exporter", None)
    if html is None:
        html = _cached.exporter = new_exporter()
    return html


def new_exporter() -> HTMLExporter:
    """Return a new HTML exporter that writes outputs only, with no CDN scripts."""
    html = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    html.template_file = _TEMPLATE_NAME
    return html


def needs_plotlyjs(notebook) -> bool:
    """Tell whether the notebook has charts but no copy of plotly.js to draw them."""
    banner = f"plotly.js v{plotly.offline.get_plotlyjs_version()}"
    has_chart = False
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if banner in data.get("text/html", ""):
                return False
            has_chart = has_chart or PLOTLY_MIMETYPE in data
    return has_chart


def export_html(notebook_path: Path, html_path: Path, title: str) -> Path:
    """Write ``html_path`` from an executed notebook and return the path.

    The page is written to ``<html_path>.tmp`` and renamed, so ``html_path`` is
    never partly written. When rendering or writing raises, KeyboardInterrupt
    included, the ``.tmp`` file is removed and the exception propagates.
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata["title"] = title
    resources = {}
    if needs_plotlyjs(notebook):
        resources["plotlyjs"] = plotly.offline.get_plotlyjs()
    temporary = html_path.with_name(html_path.name + ".tmp")
    try:
        body, _ = exporter().from_notebook_node(notebook, resources=resources)
        temporary.write_text(body, encoding="utf-8")
        temporary.replace(html_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return html_path
