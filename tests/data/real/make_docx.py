"""Write the derived forms of the iTrus table: itrus-sdk-table.docx and itrus-sdk-table.html.

They are not published files: they are the cells of ``fixtures/itrus-sdk-table.tsv`` (the table of the
iTrus privacy policy) put into a Word table with python-docx and into an HTML table, each after the
sentence that introduces the table in the policy, so that tests can check that the TSV, .docx and HTML
forms give the same register. Run from the repository root:

    .venv/bin/python tests/data/real/make_docx.py

The output is byte for byte the same at every run (fixed document dates and zip timestamps).
"""

import datetime
import html
import io
import zipfile
from pathlib import Path

import docx

HERE = Path(__file__).resolve().parent
TSV = HERE.parents[2] / "fixtures" / "itrus-sdk-table.tsv"
# The policy's own sentence above the table (seeds/001_7150280dd01a4d1f.txt).
INTRODUCTION = "4、服务过程中涉及的第三方代码、插件、SDK 传输个人信息的情形逐项列举如下："
_FIXED_TIME = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def itrus_rows() -> list[list[str]]:
    """The cells of the iTrus TSV, header row first."""
    return [line.split("\t") for line in TSV.read_text(encoding="utf-8").splitlines() if line]


def table_docx(rows: list[list[str]], *, introduction: str = INTRODUCTION) -> bytes:
    """A Word document: the introduction paragraph, then the rows as a table."""
    document = docx.Document()
    document.core_properties.created = _FIXED_TIME
    document.core_properties.modified = _FIXED_TIME
    document.core_properties.author = ""
    document.add_paragraph(introduction)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    stream = io.BytesIO()
    document.save(stream)
    return _fixed_timestamps(stream.getvalue())


def table_html(rows: list[list[str]], *, introduction: str = INTRODUCTION) -> str:
    """An HTML page: the introduction paragraph, then the rows as a table with a header row."""
    header, *body = rows
    lines = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        '<head><meta charset="utf-8"><title>第三方SDK目录</title></head>',
        "<body>",
        f"<p>{html.escape(introduction)}</p>",
        "<table>",
        "<thead><tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in header) + "</tr></thead>",
        "<tbody>",
        *("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in body),
        "</tbody>",
        "</table>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"


def _fixed_timestamps(package: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(package))
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info))
    return stream.getvalue()


def main() -> None:
    rows = itrus_rows()
    (HERE / "itrus-sdk-table.docx").write_bytes(table_docx(rows))
    (HERE / "itrus-sdk-table.html").write_text(table_html(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
