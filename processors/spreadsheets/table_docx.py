"""Tables of Word .docx documents.

A .docx is a zip package like a workbook, and is checked the same way before anything parses it
(``check_docx_package``): the zip directory's member count, total unpacked size and each part's
compression ratio, then every XML part streamed for a DOCTYPE (the carrier of entity expansion). Only
then does python-docx open it (its XML parser resolves no entities).

The tables are read from the document's XML: python-docx's own merged-cell lookup recurses once per
merged row, which a crafted table turns into a RecursionError. A cell spanning columns (``gridSpan``)
or rows (``vMerge``) is repeated into every position it spans; a cell's paragraphs are its lines; a
hyperlink follows ``table_grid.link_text``. Tables nested in cells are tables of their own. A table's
title is the nearest heading paragraph after the table before it, else the nearest paragraph.
"""

import io
import zipfile
import zlib

import docx
from django.utils.translation import gettext as _

from processors.spreadsheets.limits import ImportLimits, SpreadsheetError, check_package_sizes
from processors.spreadsheets.table_grid import (
    FoundTable,
    TableBudget,
    cell_lines,
    flat_text,
    link_text,
    shape_table,
)

# A Word document has tens of parts; a zip directory of hundreds of thousands costs memory to list.
MAX_ZIP_MEMBERS = 10_000

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("ascii", "utf-16-le", "utf-16-be")
)
# Not text a reader sees in the cell: properties, deleted text, field codes, drawings and text boxes.
_NOT_TEXT = frozenset(("pPr", "rPr", "delText", "instrText", "drawing", "pict", "object", "tbl"))


def docx_tables(data: bytes, budget: TableBudget) -> list[FoundTable]:
    """Every table of a Word document, nested ones included."""
    check_docx_package(data, file_name=budget.file_name, limits=budget.limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception:  # python-docx raises whatever its zip, XML and content-type layers raise
        raise _damaged(budget.file_name) from None
    links = {key: rel.target_ref for key, rel in document.part.rels.items() if rel.is_external}
    body = document.element.body
    tables = list(body.iter(f"{_W}tbl"))
    budget.check_tables(len(tables))
    titles = _titles(body, links)
    found = []
    for index, table in enumerate(tables):
        candidate = shape_table(index, titles.get(table, ""), _grid(table, index, budget, links))
        if candidate is not None:
            found.append(candidate)
    return found


def check_docx_package(data: bytes, *, file_name: str, limits: ImportLimits) -> None:
    """Refuse a .docx whose zip directory or XML could be hostile, before anything parses it."""
    if data.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:
        raise SpreadsheetError(
            _("“%(name)s” holds more files than any Word document does; it was not opened.")
            % {"name": file_name},
            code="zip_members",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, NotImplementedError):
        raise _damaged(file_name) from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if "word/document.xml" not in {info.filename for info in members}:
            raise SpreadsheetError(
                _("“%(name)s” is not a Word document (.docx). Save it from Word as .docx and upload it.")
                % {"name": file_name},
                code="not_a_document",
            )
        # The sizes come from the zip directory: nothing has been decompressed yet.
        check_package_sizes(
            members,
            file_name=file_name,
            limits=limits,
            unpacked_message=_(
                "“%(name)s” unpacks to %(size)s MB, more than the %(limit)s MB this register opens. "
                "Remove pictures, or copy the table into a document of its own."
            ),
            bomb_message=_(
                "“%(name)s” looks like a zip bomb: its part “%(part)s” unpacks to %(ratio)s times "
                "its size (a document stays under %(limit)s). It was not opened."
            ),
        )
        for info in members:
            if info.filename.lower().endswith((".xml", ".rels")):
                _refuse_dtd(archive, info, file_name)


def _refuse_dtd(archive: zipfile.ZipFile, info: zipfile.ZipInfo, file_name: str) -> None:
    # zipfile never inflates a part past the size its directory declares: a lying one fails its CRC.
    previous = b""
    try:
        with archive.open(info) as stream:
            for chunk in iter(lambda: stream.read(1024 * 1024), b""):
                if any(marker in previous[-64:] + chunk for marker in _DTD_MARKERS):
                    raise SpreadsheetError(
                        _(
                            "“%(name)s” contains an XML document type declaration (in “%(part)s”). Word "
                            "never writes one, and it can hide an entity-expansion (“billion laughs”) "
                            "attack, so the file was not opened."
                        )
                        % {"name": file_name, "part": info.filename},
                        code="xml_entities",
                    )
                previous = chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError, OSError):
        raise _damaged(file_name) from None


def _damaged(file_name: str) -> SpreadsheetError:
    return SpreadsheetError(
        _("“%(name)s” is a damaged Word document. Open it in Word, save it again and upload it.")
        % {"name": file_name},
        code="damaged",
    )


def _grid(table, index: int, budget: TableBudget, links: dict[str, str]) -> list[list[str]]:
    """The table's cells, merged cells repeated (gridSpan across, vMerge down)."""
    rows: list[list[str]] = []
    above: list[str] = []  # the row above, for a cell that continues a vertical merge
    widest = budget.limits.max_columns + 1  # one past the limit is enough for check_row to refuse
    for number, row in enumerate(table.iterchildren(f"{_W}tr"), start=1):
        cells = [""] * _number(row.find(f"{_W}trPr/{_W}gridBefore"), widest)
        for cell in row.iterchildren(f"{_W}tc"):
            properties = cell.find(f"{_W}tcPr")
            across = max(1, _number(None if properties is None else properties.find(f"{_W}gridSpan"), widest))
            merge = None if properties is None else properties.find(f"{_W}vMerge")
            if merge is not None and merge.get(f"{_W}val", "continue") == "continue":
                text = above[len(cells)] if len(cells) < len(above) else ""
            else:
                paragraphs = cell.iterchildren(f"{_W}p")
                text = cell_lines("\n".join(_paragraph_text(paragraph, links) for paragraph in paragraphs))
            cells.extend([text] * across)
            if len(cells) > widest:
                break
        budget.check_row(index, number, cells)
        above = cells
        rows.append(cells)
    return rows


def _number(element, ceiling: int) -> int:
    if element is None:
        return 0
    try:
        return min(max(int(element.get(f"{_W}val", "0")), 0), ceiling)
    except ValueError:
        return 0


def _paragraph_text(paragraph, links: dict[str, str]) -> str:
    parts: list[str] = []
    _collect(paragraph, parts, links)
    return "".join(parts)


def _collect(element, parts: list[str], links: dict[str, str]) -> None:
    for child in element:
        name = child.tag.rpartition("}")[2] if isinstance(child.tag, str) else ""
        if name == "t":
            parts.append(flat_text(child.text))
        elif name in ("tab", "ptab"):
            parts.append(" ")
        elif name in ("br", "cr"):
            parts.append("\n")
        elif name == "noBreakHyphen":
            parts.append("-")
        elif name == "hyperlink":
            inner: list[str] = []
            _collect(child, inner, links)
            address = links.get(child.get(_RELATIONSHIP_ID, ""), "")
            parts.append(link_text("".join(inner), address) if address else "".join(inner))
        elif name and name not in _NOT_TEXT:
            _collect(child, parts, links)


def _titles(body, links: dict[str, str]) -> dict:
    """For each table: the nearest heading after the table before it, else the nearest paragraph."""
    titles: dict = {}
    recent: list[tuple[str, bool]] = []
    last_heading = ""
    for element in body.iter(f"{_W}p", f"{_W}tbl"):
        if element.tag == f"{_W}tbl":
            headings = [text for text, heading in recent if heading]
            titles[element] = headings[-1] if headings else recent[-1][0] if recent else last_heading
            recent.clear()
            continue
        if any(ancestor.tag == f"{_W}tbl" for ancestor in element.iterancestors()):
            continue  # a paragraph of a cell is the table's content, not a title
        text = cell_lines(_paragraph_text(element, links)).replace("\n", " ")
        if not text:
            continue
        style = element.find(f"{_W}pPr/{_W}pStyle")
        heading = style is not None and style.get(f"{_W}val", "").lower().startswith(("heading", "title"))
        recent.append((text, heading))
        if heading:
            last_heading = text
    return titles
