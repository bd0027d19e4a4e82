"""Write the bad-file corpus next to this script: `python tests/data/bad/make_corpus.py`.

The files are committed and the tests read them; the tests never run this script. Huge files (a
million rows, a zip bomb, a 1 MB cell) are not here: tests/test_bad_files.py makes them in a temporary
folder so the repository stays small. Everything here is deterministic, so re-running it changes no file.
"""

import datetime
import io
import random
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = ["服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"]
ROWS = [
    ["短信服务", "北京亿美软通科技有限公司 010-58750664", "手机号", "发送验证码", "收集、存储、使用"],
    ["实名认证", "北京市商汤科技开发有限公司", "姓名、身份证号", "实名认证", "收集、使用"],
    ["电子签名", "北京天威诚信电子商务服务有限公司", "姓名、手机号", "签署合同", "收集、存储"],
]

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def billion_laughs_dtd() -> str:
    """The classic: &lol9; expands to 10^9 "lol"s, about 3 GB, from a few hundred bytes."""
    entities = ['<!ENTITY lol "lol">']
    for level in range(1, 10):
        previous = f"lol{level - 1}" if level > 1 else "lol"
        entities.append(f'<!ENTITY lol{level} "{f"&{previous};" * 10}">')
    return f"<!DOCTYPE lolz [{''.join(entities)}]>"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline_cell(reference: str, value: str) -> str:
    return f'<c r="{reference}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'


def sheet_xml(rows: list[list[str]], *, dimension: str = "", after_data: str = "", doctype: str = "") -> str:
    """A worksheet part of inline strings, as a library would write it."""
    body = "".join(
        f'<row r="{number}">'
        + "".join(inline_cell(f"{chr(65 + index)}{number}", value) for index, value in enumerate(cells))
        + "</row>"
        for number, cells in enumerate(rows, start=1)
    )
    dimension_xml = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<worksheet xmlns="{MAIN_NS}">'
        f"{dimension_xml}<sheetData>{body}</sheetData>{after_data}</worksheet>"
    )


def package(sheet: str, *, shared_strings: str = "") -> bytes:
    """A minimal .xlsx package around one worksheet part (and a shared-strings part if given)."""
    overrides = f'<Override PartName="/xl/workbook.xml" ContentType="{WORKBOOK_TYPE}"/>'
    overrides += f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}"/>'
    workbook_rels = f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    if shared_strings:
        overrides += f'<Override PartName="/xl/sharedStrings.xml" ContentType="{STRINGS_TYPE}"/>'
        workbook_rels += f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f"{overrides}</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_REL_NS}">'
            f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
            '<sheets><sheet name="清单" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_REL_NS}">'
            f"{workbook_rels}</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared_strings:
        parts["xl/sharedStrings.xml"] = shared_strings
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            # A fixed date keeps the bytes identical from one run to the next.
            archive.writestr(
                zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text.encode("utf-8"), zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()


def openpyxl_workbook(build) -> bytes:
    """A workbook written by openpyxl (as a script would), after ``build(worksheet)``."""
    import openpyxl

    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = "清单"
    build(worksheet)
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stamps the current time into docProps; rewrite the package with fixed dates.
    source = zipfile.ZipFile(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "docProps/core.xml":
                data = b'<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"/>'
            archive.writestr(
                zipfile.ZipInfo(info.filename, (2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED
            )
    return out.getvalue()


def ole2(stream_names: list[str]) -> bytes:
    """The first sector of an OLE2 compound file naming the given streams, as Office writes them."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16 + struct.pack("<HH", 0x3E, 3) + b"\xfe\xff"
    header = header.ljust(512, b"\x00")
    directory = b"".join(name.encode("utf-16-le").ljust(64, b"\x00") + b"\x00" * 64 for name in stream_names)
    return header + directory.ljust(512, b"\x00")


def table(rows: list[list[str]], delimiter: str = "\t") -> str:
    return "".join(delimiter.join(cells) + "\n" for cells in rows)


def write(name: str, data: bytes | str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(data.encode(encoding) if isinstance(data, str) else data)


def main() -> None:
    rng = random.Random(20240101)
    valid = [HEADER, *ROWS]

    # --- not a spreadsheet at all ---
    write("legacy.xls", ole2(["Root Entry", "Workbook", "SummaryInformation"]))
    write("password-protected.xlsx", ole2(["Root Entry", "EncryptionInfo", "EncryptedPackage"]))
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x04\x00\x09\xfb\x03\xfd\xe3U\xf2\x9c\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    write("screenshot-renamed.xlsx", png)
    write(
        "photo-renamed.csv",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(rng.randrange(256) for _ in range(200)),
    )
    write(
        "register.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    write("random-bytes.xlsx", bytes(rng.randrange(256) for _ in range(2048)))
    write("random-bytes.csv", bytes(rng.randrange(256) for _ in range(2048)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("清单.txt", (2024, 1, 1, 0, 0, 0)), table(valid).encode("utf-8"))
    write("archive-not-workbook.xlsx", buffer.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in {
            "[Content_Types].xml": "<Types/>",
            "word/document.xml": "<w:document xmlns:w='urn:w'><w:body/></w:document>",
        }.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text)
    write("word-renamed.xlsx", buffer.getvalue())
    write("workbook-renamed.csv", package(sheet_xml(valid)))
    write("empty.xlsx", b"")

    # --- a workbook whose zip directory promises too much: never inflated ---
    honest = package(sheet_xml(valid))
    write("unpacked-too-large.xlsx", _claim_size(honest, "xl/worksheets/sheet1.xml", 300 * 1024 * 1024))

    # --- XML entity expansion ("billion laughs") ---
    write(
        "billion-laughs-strings.xlsx",
        package(
            sheet_xml([HEADER]).replace(
                "</sheetData>", '<row r="2"><c r="A2" t="s"><v>0</v></c></row></sheetData>'
            ),
            shared_strings=(
                f'<?xml version="1.0" encoding="UTF-8"?>{billion_laughs_dtd()}'
                f'<sst xmlns="{MAIN_NS}" count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
            ),
        ),
    )
    write(
        "billion-laughs-sheet.xlsx",
        package(
            sheet_xml([HEADER, ["&lol9;", *ROWS[0][1:]]], doctype=billion_laughs_dtd()).replace(
                "&amp;lol9;", "&lol9;"
            )
        ),
    )

    # --- tables the importer refuses ---
    write("header-only.xlsx", package(sheet_xml([HEADER])))
    write(
        "unknown-headers.csv",
        table([["服务名称", "合作伙伴", "备注"], ["短信服务", "某公司", "每日发送"]], ","),
    )
    write("duplicate-rows.tsv", table([HEADER, ROWS[0], ROWS[1], ROWS[0]]))

    def formula_without_value(sheet) -> None:
        for cells in valid:
            sheet.append(cells)
        sheet["C3"] = '=CONCAT("姓名", "、手机号")'  # openpyxl writes the formula, never its value

    write("formula-without-value.xlsx", openpyxl_workbook(formula_without_value))
    write(
        "too-many-columns.csv", table([HEADER, ROWS[0], [*ROWS[1], *(f"备注{n}" for n in range(150))]], ",")
    )

    # --- text that is not honest text ---
    lines = table(valid)
    raw = lines.encode("utf-8")
    cut = raw.index("实名认证".encode())
    write("broken-utf8.csv", raw[:cut] + b"\xff\xfe" + raw[cut:])
    utf8_lines = table(valid).splitlines(keepends=True)
    mixed = b"".join(
        line.encode("gbk") if number == 3 else line.encode("utf-8")
        for number, line in enumerate(utf8_lines, start=1)
    )
    write("mixed-encodings.tsv", mixed)
    write("bom-then-gbk.csv", b"\xef\xbb\xbf" + table(valid, ",").encode("gbk"))
    write("nul-bytes.csv", table(valid, ",").replace("实名认证,北京市", "实名认证\x00,北京市"))
    write(
        "unterminated-quote.csv",
        table([HEADER, ROWS[0]], ",") + '"实名认证,北京市商汤科技开发有限公司,姓名,实名认证,收集\n',
    )
    write(
        "stray-quote.csv",
        table([HEADER, ROWS[0]], ",") + '"实名"认证,北京市商汤科技开发有限公司,姓名,实名认证,收集\n',
    )

    # --- hard but valid: these must import ---
    def merged_service(sheet) -> None:
        sheet.append(HEADER)
        for cells in ROWS:
            sheet.append(["", *cells[1:]])
        sheet["A2"] = "短信服务"
        sheet.merge_cells("A2:A4")  # one service, three recipients: the usual disclosure-table layout

    write("merged-service.xlsx", openpyxl_workbook(merged_service))
    write("dimension-too-small.xlsx", package(sheet_xml(valid, dimension="A1:B2")))
    write("title-rows.tsv", "某某公司第三方信息共享清单\n\n更新日期：2024年1月1日\n" + table(valid))

    def dates_where_text_belongs(sheet) -> None:
        sheet.append(HEADER)
        # Excel turns a typed "2024/3/1" into a date and keeps 0.1 + 0.2 as a float.
        sheet.append([*ROWS[0][:3], datetime.datetime(2024, 3, 1), 0.1 + 0.2])

    write("dates-where-text-belongs.xlsx", openpyxl_workbook(dates_where_text_belongs))
    write("row-longer-than-header.csv", table([HEADER, [*ROWS[0], "多出来的一格"]], ","))
    write("unicode-text.txt", "\ufeff" + table(valid), encoding="utf-16-le")
    write("gbk-chinese.csv", table(valid, ","), encoding="gbk")


def _claim_size(data: bytes, member: str, size: int) -> bytes:
    """The same zip with its central directory claiming ``size`` unpacked bytes for one member."""
    name = member.encode("utf-8")
    position = data.index(b"PK\x01\x02")
    while True:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + name_length] == name:
            # Offset 24 of a central directory entry is the uncompressed size.
            return data[: position + 24] + struct.pack("<I", size) + data[position + 28 :]
        position = data.index(b"PK\x01\x02", position + 4)


if __name__ == "__main__":
    main()
