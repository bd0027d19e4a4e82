"""Documents of a diff: the change notice (Markdown) and the change table (rows, an .xlsx workbook).

Document text (the change notice, the workbook headers) is chosen by ``lang``, not by the active locale,
as the exporters do: a Chinese notice must be Chinese whatever language the user interface speaks. A new
recipient's purposes, actions and countries are its disclosure row's (``rows.RowRenderer``), so the notice
says what the table says.
"""

import re
from collections.abc import Iterable
from typing import Any, BinaryIO

from django.utils import translation
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from processors.disclosure.diff import MATERIAL, MINOR, REDUCTION, Change, VersionDiff, VersionRef
from processors.disclosure.rows import RowRenderer, check_language, party_name
from processors.models import ConsentType, LegalBasis, Relationship, TransferMechanism
from processors.spreadsheets.safety import neutralise, strip_illegal_characters

_DOC_LOCALE = {"zh": "zh-hans", "en": "en"}

NOTICE_TEXT: dict[str, dict[str, Any]] = {
    "zh": {
        "title": "个人信息对外提供清单变更说明",
        "intro": "{controller}的第三方信息共享清单由{old}更新为{new}。",
        "version": "版本 {label}（{date} 生效）",
        "version_undated": "版本 {label}",
        "live": "当前登记册（尚未发布）",
        "earlier": "此前的状态",
        "material": "对外提供个人信息的对象、范围、目的发生变化，详见下文。",
        "not_material": "本次更新没有新增接收方、个人信息种类或处理目的。",
        "reconsent": "标注“需重新取得单独同意”的变更涉及敏感个人信息、向其他个人信息处理者提供、"
        "公开或向境外提供，我们将在按变更后的范围处理前再次取得您的单独同意。",
        "none": "两个版本的内容相同，没有变化。",
        "added": "新增的个人信息接收方",
        "changed": "处理范围扩大的接收方",
        "reductions": "不再提供或范围缩减",
        "minor": "其他变更（联系方式、名称和文字表述）",
        "contact": "联系方式",
        "categories": "个人信息种类",
        "purposes": "处理目的",
        "actions": "处理方式",
        "abroad": "境外接收方所在国家或地区",
        "sensitive": "敏感个人信息",
        "reconsent_mark": "需重新取得单独同意",
        "controller": "个人信息处理者",
        "separator": "、",
        "colon": "：",
        "arrow": " → ",
        "empty": "（空）",
        "yes": "是",
        "no": "否",
        "kinds": {
            "recipient_added": "新增接收方",
            "member_added": "新增接收方成员",
            "category_added": "新增个人信息种类",
            "purpose_added": "新增处理目的",
            "action_added": "新增处理方式",
            "cross_border_started": "开始向境外提供",
            "destination_added": "新增境外接收方所在国家或地区",
            "relationship_changed": "接收方关系变更",
            "consent_changed": "同意方式变更",
            "legal_basis_changed": "合法性基础变更",
            "recipient_removed": "不再向该接收方提供",
            "member_removed": "接收方成员减少",
            "category_removed": "不再提供的个人信息种类",
            "purpose_removed": "不再用于的处理目的",
            "action_removed": "不再进行的处理方式",
            "cross_border_ended": "停止向境外提供",
            "destination_removed": "不再提供的境外国家或地区",
            "mechanism_changed": "出境机制变更",
            "contact_changed": "联系方式变更",
            "name_changed": "名称变更",
            "wording_changed": "文字表述调整",
        },
        "impacts": {MATERIAL: "重大变更（需告知）", REDUCTION: "范围缩减", MINOR: "一般变更"},
        "headers": (
            "影响",
            "变更",
            "服务/功能",
            "接收方",
            "涉及内容",
            "原内容",
            "新内容",
            "敏感个人信息",
            "需重新取得单独同意",
        ),
        "sheet": "变更明细",
    },
    "en": {
        "title": "Change notice: third parties receiving personal information",
        "intro": "{controller} has updated its list of third parties receiving personal information from "
        "{old} to {new}.",
        "version": "version {label} (in effect from {date})",
        "version_undated": "version {label}",
        "live": "the current register (not yet published)",
        "earlier": "the earlier state",
        "material": "The recipients of personal information, the information provided or the purposes have "
        "changed; see below.",
        "not_material": "This update adds no recipient, no category of personal information and no purpose.",
        "reconsent": "Changes marked “separate consent required” concern sensitive personal information, "
        "provision to another handler, public disclosure or a transfer abroad: we will ask for your "
        "separate consent again before processing within the new scope.",
        "none": "The two versions are the same; nothing changed.",
        "added": "New recipients",
        "changed": "Recipients receiving more",
        "reductions": "No longer provided, or provided less",
        "minor": "Other changes (contact details, names and wording)",
        "contact": "Contact",
        "categories": "Personal information",
        "purposes": "Purposes",
        "actions": "Processing",
        "abroad": "Countries or regions of the recipients abroad",
        "sensitive": "sensitive",
        "reconsent_mark": "separate consent required",
        "controller": "Controller",
        "separator": "; ",
        "colon": ": ",
        "arrow": " → ",
        "empty": "(empty)",
        "yes": "yes",
        "no": "no",
        "kinds": {
            "recipient_added": "New recipient",
            "member_added": "New member of the recipient group",
            "category_added": "New personal information",
            "purpose_added": "New purpose",
            "action_added": "New processing",
            "cross_border_started": "Transfer abroad starts",
            "destination_added": "New country or region abroad",
            "relationship_changed": "Relationship changed",
            "consent_changed": "Consent changed",
            "legal_basis_changed": "Legal basis changed",
            "recipient_removed": "No longer provided to this recipient",
            "member_removed": "Member of the recipient group removed",
            "category_removed": "Personal information no longer provided",
            "purpose_removed": "Purpose no longer pursued",
            "action_removed": "Processing no longer done",
            "cross_border_ended": "Transfer abroad ends",
            "destination_removed": "Country or region abroad removed",
            "mechanism_changed": "Cross-border mechanism changed",
            "contact_changed": "Contact details changed",
            "name_changed": "Name changed",
            "wording_changed": "Wording changed",
        },
        "impacts": {MATERIAL: "Material (notify)", REDUCTION: "Reduction", MINOR: "Minor"},
        "headers": (
            "Impact",
            "Change",
            "Service/feature",
            "Recipient",
            "Concerns",
            "Before",
            "After",
            "Sensitive",
            "Separate consent required",
        ),
        "sheet": "Changes",
    },
}

# Fields whose codes are shown with their (translated) model labels.
_CODE_FIELDS = {
    "relationship": Relationship,
    "consent_type": ConsentType,
    "legal_basis": LegalBasis,
    "transfer_mechanism": TransferMechanism,
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Text with Markdown's special characters escaped, so a name cannot format or link the notice."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text or "")).replace("\n", " ")


def _side(ref: VersionRef, text: dict[str, Any], unpublished: str) -> str:
    """How the notice names one side: a version with its date, or an unpublished state."""
    if ref.live:
        return text[unpublished]
    if ref.effective_on:
        return text["version"].format(label=ref.label, date=ref.effective_on.isoformat())
    return text["version_undated"].format(label=ref.label)


def value_text(field_name: str, value: Any, lang: str) -> str:
    """A changed field's value as a document in this language shows it (codes by their labels)."""
    text = NOTICE_TEXT[lang]
    if value in (None, ""):
        return text["empty"]
    choices = _CODE_FIELDS.get(field_name)
    if choices is not None:
        with translation.override(_DOC_LOCALE[lang]):
            return str(dict(choices.choices).get(value, value))
    return str(value)


def item_text(item: dict[str, Any], lang: str) -> str:
    """The name of what a change concerns (a category, purpose, action, country or group member)."""
    if "party" in item:
        return item["party_en"] if lang == "en" else item["party"]
    name = item.get(f"name_{lang}") or item.get("name_zh") or item.get("text") or item.get("code") or ""
    return name


def _items_text(items: Iterable[dict[str, Any]], lang: str, *, markdown: bool) -> str:
    text = NOTICE_TEXT[lang]
    parts = []
    for item in items:
        name = _md(item_text(item, lang)) if markdown else item_text(item, lang)
        if item.get("sensitive"):
            mark = f"（{text['sensitive']}）" if lang == "zh" else f" ({text['sensitive']})"
            name = f"**{name}**{mark}" if markdown else f"{name}{mark}"
        parts.append(name)
    return text["separator"].join(parts)


def _change_text(change: Change, lang: str, *, markdown: bool) -> str:
    """One change as a phrase: what changed, and on what or from what to what."""
    text = NOTICE_TEXT[lang]
    label = text["kinds"][change.kind]
    if change.items and change.kind not in ("contact_changed", "name_changed"):
        return f"{label}{text['colon']}{_items_text(change.items, lang, markdown=markdown)}"
    if change.field:
        old = value_text(change.field.split(".")[-1], change.old, lang)
        new = value_text(change.field.split(".")[-1], change.new, lang)
        if markdown:
            old, new = _md(old), _md(new)
        who = ""
        if change.items:
            party = item_text(change.items[0], lang)
            who = f"{_md(party) if markdown else party}{text['colon']}"
        return f"{label}{text['colon']}{who}{old}{text['arrow']}{new}"
    return label


def _heading(change: Change, lang: str) -> str:
    text = NOTICE_TEXT[lang]
    if not change.key:
        return text["controller"]
    service = change.service_en if lang == "en" else change.service
    recipient = change.recipient_en if lang == "en" else change.recipient
    return f"**{_md(service)}**{' | ' if lang == 'en' else '｜'}{_md(recipient)}"


def diff_markdown(diff: VersionDiff, lang: str = "zh") -> str:
    """The diff as a change notice in Markdown, ready to paste into a privacy-policy update (zh or en)."""
    check_language(lang)
    text = NOTICE_TEXT[lang]
    controller = diff.controller or {}
    lines = [
        f"# {text['title']}",
        "",
        text["intro"].format(
            controller=_md(party_name(controller, lang)) if controller else "",
            old=_md(_side(diff.old, text, "earlier")),
            new=_md(_side(diff.new, text, "live")),
        ),
        "",
    ]
    if not diff.has_changes:
        lines.append(text["none"])
        return "\n".join(lines) + "\n"
    lines.append(text["material"] if diff.is_material else text["not_material"])
    if diff.reconsent_required:
        lines += ["", text["reconsent"]]
    added = diff.recipients_added
    if added:
        lines += ["", f"## {text['added']}", ""]
        for change in sorted(added, key=lambda change: not change.sensitive):
            lines += _added_lines(change, lang)
    sections = (
        ("changed", [c for c in diff.material if c.kind != "recipient_added"]),
        ("reductions", diff.reductions),
        ("minor", diff.minor),
    )
    for title, changes in sections:
        if not changes:
            continue
        lines += ["", f"## {text[title]}", ""]
        grouped: dict[str, list[Change]] = {}
        for change in changes:
            grouped.setdefault(change.key, []).append(change)
        for group in grouped.values():
            first = group[0]
            lines.append(f"- {_heading(first, lang)}")
            lines.extend(f"  - {_change_text(change, lang, markdown=True)}" for change in group)
            if any(change.reconsent for change in group):
                lines.append(f"  - **{text['reconsent_mark']}**")
    return "\n".join(lines) + "\n"


def _added_lines(change: Change, lang: str) -> list[str]:
    text = NOTICE_TEXT[lang]
    entry = change.entry or {}
    processor = entry.get("processor", {})
    colon = text["colon"]
    lines = [f"- {_heading(change, lang)}"]
    contacts = [processor.get(name) for name in ("contact_phone", "contact_email", "website")]
    contacts = [value for value in contacts if value]
    if contacts:
        lines.append(f"  - {text['contact']}{colon}{_md(text['separator'].join(contacts))}")
    lines.append(f"  - {text['categories']}{colon}{_items_text(change.items, lang, markdown=True)}")
    row = RowRenderer(lang=lang).entry_row(entry) if entry else None
    if row is not None and row.purpose:
        lines.append(f"  - {text['purposes']}{colon}{_md(row.purpose)}")
    if row is not None and row.actions:
        lines.append(f"  - {text['actions']}{colon}{_md(row.actions)}")
    if entry.get("cross_border"):
        names = list(row.destinations) if row is not None else []
        lines.append(f"  - {text['abroad']}{colon}{_md(text['separator'].join(names or ['—']))}")
    if change.reconsent:
        lines.append(f"  - **{text['reconsent_mark']}**")
    return lines


def diff_rows(diff: VersionDiff, lang: str = "zh") -> list[list[str]]:
    """The diff as table rows (header first): material changes (sensitive first), reductions, then minor."""
    check_language(lang)
    text = NOTICE_TEXT[lang]
    rows = [list(text["headers"])]
    for change in [*diff.material, *diff.reductions, *diff.minor]:
        field_name = change.field.split(".")[-1]
        has_values = bool(change.field)
        rows.append(
            [
                text["impacts"][change.impact],
                text["kinds"][change.kind],
                (change.service_en if lang == "en" else change.service) if change.key else text["controller"],
                change.recipient_en if lang == "en" else change.recipient,
                _items_text(change.items, lang, markdown=False),
                value_text(field_name, change.old, lang) if has_values else "",
                value_text(field_name, change.new, lang) if has_values else "",
                text["yes"] if change.sensitive else text["no"],
                text["yes"] if change.reconsent else text["no"],
            ]
        )
    return rows


def diff_xlsx(diff: VersionDiff, stream: BinaryIO, lang: str = "zh") -> int:
    """Write the diff as an .xlsx workbook (formula-safe); returns the number of change rows."""
    rows = diff_rows(diff, lang)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = NOTICE_TEXT[lang]["sheet"]
    for row in rows:
        sheet.append([neutralise(strip_illegal_characters(cell)) or None for cell in row])
    header_fill = PatternFill("solid", fgColor="D9D9D9")
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = header_fill
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = wrap
    for letter, width in zip("ABCDEFGHI", (16, 22, 18, 30, 40, 24, 24, 10, 14), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    workbook.save(stream)
    return len(rows) - 1
