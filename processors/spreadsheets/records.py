"""Record-form lists: one block of ``键：值`` lines per SDK, read as a table.

Many Chinese SDK lists are not grids but a heading per SDK followed by lines such as ``第三方名称：…``,
``使用目的：…``, ``收集个人信息类型：…`` (a bold line in Markdown, a numbered ``1、OPPO游戏SDK``, a
``功能（SDK名称）`` line, a bullet list item), sometimes without any heading, the records then separated
by their first key coming round again. ``record_tables`` turns each run of such records into a
``FoundTable`` the importer reads like any other: the heading is the SDK (the service) column, each key
a column, and keys that mean one field (第三方名称 / 第三方SDK提供方的公司名称) share one column, so that a
list whose records use different words for one thing is still one table.

The document is read as a reader sees it: Markdown is rendered (markdown-it-py, as ``table_html`` does)
and HTML parsed by lxml with the same defences, then taken as lines (blocks and ``<br>`` break lines,
links are ``text <url>``). A record without a recipient key (an open-source SDK, an SDK brand alone)
names its SDK as its recipient, as the published list does.
"""

import re

import lxml.etree
import lxml.html
from markdown_it import MarkdownIt

from processors.spreadsheets.cells import clean_markup
from processors.spreadsheets.columns import DISCLOSURE_COLUMNS
from processors.spreadsheets.table_grid import FoundTable, shape_table
from processors.spreadsheets.table_html import element_text, refuse_entities
from processors.text import normalize_key

# A key is a short label: longer text before a colon is a sentence ("以下为…的业务：").
MAX_KEY_CHARS = 24
# A heading names one SDK; a longer line is prose.
MAX_HEADING_CHARS = 60
# Fewer records than this are an example in prose, not a list.
MIN_RECORDS = 2

# The column a record's heading fills, and the one a record without a recipient key fills from it.
HEADING_HEADER = "SDK名称"
RECIPIENT_HEADER = "第三方名称"

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_KEY_VALUE = re.compile(rf"^(?P<key>[^:：]{{1,{MAX_KEY_CHARS}}}?)\s*[:：]\s*(?P<value>.*)$")
_NUMBERING = re.compile(r"^\s*(?:\d{1,3}\s*[、.．)）]|[（(]\d{1,3}[)）])\s*")
_SENTENCE_END = re.compile(r"[。；;！!？?]$")
_ADDRESS = re.compile(r"(https?://|www\.)", re.IGNORECASE)


def _is_clause(key: str) -> bool:
    return "，" in key or "," in key


def record_tables(text: str, *, file_name: str, html: bool, first_index: int = 0) -> list[FoundTable]:
    """The record-form lists of a Markdown or HTML document, each as a table (header row first)."""
    refuse_entities(text, file_name)
    lines = _document_lines(text, html=html)
    tables = []
    for run in _runs(lines):
        candidate = _table(run, index=first_index + len(tables))
        if candidate is not None:
            tables.append(candidate)
    return tables


def _document_lines(text: str, *, html: bool) -> list[str]:
    text = text.lstrip("\ufeff")
    if not html:
        text = _FRONT_MATTER.sub("", text, count=1)
        text = MarkdownIt("commonmark", {"html": True}).render(text)
    # Hexo and Jekyll posts keep their front matter above the HTML too.
    text = _FRONT_MATTER.sub("", text, count=1)
    if not text.strip():
        return []
    parser = lxml.html.HTMLParser(
        no_network=True, huge_tree=False, remove_comments=True, remove_pis=True, default_doctype=False
    )
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return []
    body = root.find("body")
    # Bold that CommonMark leaves as asterisks ("**使用目的：**统计分析": a closing ** after punctuation
    # cannot close) is still bold to a reader.
    return [clean_markup(line) for line in element_text(body if body is not None else root).split("\n")]


def _key_value(line: str) -> tuple[str, str] | None:
    match = _KEY_VALUE.match(line)
    if match is None:
        return None
    key, value = match.group("key").strip(), match.group("value").strip()
    # "https://…" and "12:30" are not keys; a key is a label, not a clause ("第三方隐私政策链接，仅供参考："
    # is a label too, its value on the next line).
    if not key or key.isdigit() or value.startswith("//") or _SENTENCE_END.search(key):
        return None
    if _is_clause(key) and value:
        return None
    return key, value


def _runs(lines: list[str]) -> list[list[dict]]:
    """Runs of records: each record a {"heading": str, "pairs": [(key, value)]}; prose ends a run."""
    runs: list[list[dict]] = []
    run: list[dict] = []
    record: dict | None = None
    waiting_key = ""  # a key whose value is on the next line

    def close_run() -> None:
        nonlocal run, record
        if record is not None and record["pairs"]:
            run.append(record)
        if len(run) >= MIN_RECORDS:
            runs.append(run)
        run, record = [], None

    for number, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        pair = _key_value(line)
        if pair is not None:
            key, value = pair
            if record is None or any(
                normalize_key(key) == normalize_key(seen) for seen, _v in record["pairs"]
            ):
                if record is not None and record["pairs"]:
                    run.append(record)
                record = {"heading": "", "pairs": []}
            record["pairs"].append((key, value))
            waiting_key = key if not value else ""
            continue
        following = next(
            (lines[later].strip() for later in range(number + 1, len(lines)) if lines[later].strip()), ""
        )
        if len(line) <= MAX_HEADING_CHARS and _key_value(following) is not None:
            if record is not None and record["pairs"]:
                run.append(record)
            record = {"heading": _NUMBERING.sub("", line).strip(), "pairs": []}
            waiting_key = ""
            continue
        if waiting_key and record is not None:
            # A label's value on the next line; a clause before a colon ("目前，…包括以下类型：") only
            # introduces a link ("第三方隐私政策链接，仅供参考：" then the address).
            if not _is_clause(waiting_key) or _ADDRESS.match(line):
                record["pairs"][-1] = (waiting_key, line)
                waiting_key = ""
                continue
            record["pairs"].pop()
            waiting_key = ""
        close_run()
    close_run()
    return runs


def _table(run: list[dict], *, index: int) -> FoundTable | None:
    """The run's records as rows under one header; None when too few of its keys name fields."""
    spec = DISCLOSURE_COLUMNS
    columns: list[str] = []  # column ids: a field, or the key's match key
    headers: dict[str, str] = {}
    # A label left without a value ("…目录如下：") says nothing about a record.
    run = [
        {"heading": record["heading"], "pairs": [(key, value) for key, value in record["pairs"] if value]}
        for record in run
    ]
    run = [record for record in run if record["pairs"]]
    if len(run) < MIN_RECORDS:
        return None
    headed = any(record["heading"] for record in run)
    known_keys = {
        normalize_key(key): field
        for record in run
        for key, _value in record["pairs"]
        if len(normalize_key(key)) >= 4 and (field := DISCLOSURE_COLUMNS.field_for(key))
    }
    for record in run:
        for key, _value in record["pairs"]:
            column = _column(key, headed, known_keys)
            if column not in headers:
                columns.append(column)
                headers[column] = key
    known = {column for column in columns if column in spec.by_field}
    if len(known) < 2:
        return None
    if headed and "service" not in known:
        columns.insert(0, "service")
        headers["service"] = HEADING_HEADER
    if "recipient" not in known:
        columns.insert(1 if headed else 0, "recipient")
        headers["recipient"] = RECIPIENT_HEADER
    rows = [[headers[column] for column in columns]]
    for record in run:
        values: dict[str, str] = {}
        for key, value in record["pairs"]:
            column = _column(key, headed, known_keys)
            # Two keys of one record for one field (实现功能/场景, 实现目的) are both kept.
            values[column] = f"{values[column]}\n{value}" if values.get(column) else value
        heading = record["heading"]
        if heading and not values.get("service"):
            values["service"] = heading
        if not values.get("recipient"):
            values["recipient"] = values.get("service", "")
        rows.append([values.get(column, "") for column in columns])
    title = next((record["heading"] for record in run if record["heading"]), "")
    return shape_table(index, title, rows)


def _column(key: str, headed: bool, known_keys: dict[str, str] | None = None) -> str:
    """The column a key fills: its field, or its own match key when it names none."""
    column = DISCLOSURE_COLUMNS.field_for(key)
    if column is None:
        own = normalize_key(key)
        # A key that is the end of a key the run also uses is that key with its start lost to a typo
        # ("dk用途" beside "SDK用途").
        column = next(
            (field for other, field in (known_keys or {}).items() if other != own and other.endswith(own)),
            own,
        )
    # Under a heading that names the SDK, 功能 / 服务 describe what it does: a purpose, not the service.
    return "purpose" if headed and column == "service" else column
