"""The demo's HTML report: sections of text, pictures and tables, written once at the end."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..io.atomic import atomic_path


@dataclass
class Section:
    title: str
    text: str = ""
    images: list[tuple[Path, str]] = field(default_factory=list)
    table: tuple[list[str], list[list]] | None = None


class Report:
    """Collects sections; :meth:`write` renders ``report.html`` beside the pictures.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> r = Report(pathlib.Path(tempfile.mkdtemp()), "Demo")
    >>> r.section("Volumes", "Two structures.", table=(["name", "cc"], [["GTV", 33.5]]))
    >>> "GTV" in r.write().read_text()
    True
    """

    def __init__(self, folder: Path, title: str):
        self.folder = Path(folder)
        self.title = title
        self.sections: list[Section] = []

    def figure_path(self, job: str, name: str) -> Path:
        """Where a job saves a picture for the report (``<folder>/<job>/<name>``)."""
        path = self.folder / job / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def section(
        self,
        title: str,
        text: str = "",
        images: list[tuple[str | os.PathLike, str]] | None = None,
        table: tuple[list[str], list[list]] | None = None,
    ) -> None:
        """Add a section: a title, a paragraph, pictures with captions and an optional table."""
        self.sections.append(Section(title, text, [(Path(p), c) for p, c in images or []], table))

    def write(self) -> Path:
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}"
            "figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:100%;border:1px solid #ccc}"
            "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        for s in self.sections:
            parts.append(f"<h2>{html.escape(s.title)}</h2>")
            if s.text:
                parts.append("".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in s.text.split("\n\n")))
            for path, caption in s.images:
                rel = os.path.relpath(path, self.folder)
                # natural size (up to the page width); a click opens the picture alone, full size
                parts.append(
                    f"<figure><a href='{html.escape(rel)}' target='_blank'><img src='{html.escape(rel)}' "
                    f"alt='{html.escape(caption)}'></a><figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            if s.table:
                header, rows = s.table
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
                parts.append("</table>")
        parts.append("</body></html>")
        out = self.folder / "report.html"
        with atomic_path(out) as tmp:
            tmp.write_text("\n".join(parts), encoding="utf-8")
        return out


def _cell(value) -> str:
    """A table value: 4 significant digits, and 0 for what is zero to that precision (not ``1.846e-08``).

    >>> _cell(1.846e-08), _cell(59.987), _cell(0.99871), _cell(12)
    ('0', '59.99', '0.9987', '12')
    """
    if isinstance(value, float):
        if abs(value) < 5e-5:
            return "0"
        return f"{value:.4g}"
    return str(value)
