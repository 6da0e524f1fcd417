"""The Markdown the drill reports use (chaos.drills.report.incident.render_markdown), turned into HTML for the
game-day page: headings, paragraphs, `-` lists, pipe tables (with `\\|` in cells), fenced code, inline code,
bold, links and images. Nothing more, so that it needs no package and every text is escaped on its way in.

Links keep only safe targets (http(s), in-page anchors, relative paths); an image is handed to the caller,
which decides what a picture becomes on a page that must load nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

ImageHtml = Callable[[str, str], str]  # (alt, src) → HTML to put in the image's place

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")
TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
IMAGE_LINE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
# Inline syntax, applied to already escaped text: none of these characters is changed by html.escape.
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
BOLD = re.compile(r"\*\*(.+?)\*\*")
SAFE_HREF = re.compile(r"^(https?://|#|[\w./-]+$)")


def no_image(alt: str, src: str) -> str:
    return f'<span class="note">[image {escape(alt)}: {escape(src)} is not embedded]</span>'


def inline(text: str, image: ImageHtml = no_image) -> str:
    """One line of Markdown text as escaped HTML with code spans, bold, links and images."""
    pieces = re.split(r"(`[^`]*`)", text)  # code spans first: nothing inside them is Markdown
    out = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(f"<code>{escape(piece[1:-1])}</code>")
            continue
        html = escape(piece, quote=False)
        html = IMAGE.sub(lambda m: image(_unescape(m.group(1)), _unescape(m.group(2))), html)
        html = LINK.sub(_link, html)
        html = BOLD.sub(r"<strong>\1</strong>", html)
        out.append(html)
    return "".join(out)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link(match: re.Match[str]) -> str:
    label, href = match.group(1), _unescape(match.group(2))
    if not SAFE_HREF.match(href):  # javascript:, data: and the like stay text
        return f"{label} ({escape(href)})"
    return f'<a href="{escape(href)}">{label}</a>'


def split_row(line: str) -> list[str]:
    """A table row's cells: split on `|` that is not escaped, then `\\|` back to `|`."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def to_html(markdown: str, *, heading_offset: int = 0, image: ImageHtml = no_image) -> str:
    """`markdown` as HTML; headings move down `heading_offset` levels (a report's `#` inside a page's section)."""
    lines = markdown.splitlines()
    out: list[str] = []
    paragraph: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph), image)}</p>")
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush_paragraph()
            language = stripped[3:].strip()
            end = next((j for j in range(index + 1, len(lines)) if lines[j].strip().startswith("```")), len(lines))
            code = "\n".join(lines[index + 1 : end])
            label = f' data-language="{escape(language)}"' if language else ""
            out.append(f"<pre{label}><code>{escape(code)}</code></pre>")
            index = end + 1
            continue
        if not stripped:
            flush_paragraph()
            index += 1
            continue
        if heading := HEADING.match(stripped):
            flush_paragraph()
            level = min(6, len(heading.group(1)) + heading_offset)
            out.append(f"<h{level}>{inline(heading.group(2), image)}</h{level}>")
            index += 1
            continue
        if stripped.startswith("|") and index + 1 < len(lines) and TABLE_SEPARATOR.match(lines[index + 1].strip()):
            flush_paragraph()
            header = split_row(stripped)
            rows = []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append(split_row(lines[index]))
                index += 1
            out.append(_table(header, rows, image))
            continue
        if LIST_ITEM.match(line):
            flush_paragraph()
            items = []
            while index < len(lines) and (item := LIST_ITEM.match(lines[index])):
                items.append(f"<li>{inline(item.group(1), image)}</li>")
                index += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        if picture := IMAGE_LINE.match(stripped):
            flush_paragraph()
            out.append(image(picture.group(1), picture.group(2)))
            index += 1
            continue
        paragraph.append(stripped)
        index += 1
    flush_paragraph()
    return "\n".join(out)


def _table(header: list[str], rows: list[list[str]], image: ImageHtml) -> str:
    head = "".join(f"<th>{inline(cell, image)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{inline(cell, image)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
