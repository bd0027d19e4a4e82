"""Deletion notice letters: the letter one recipient is sent, as e-mail text and as a .docx.

A ``notices.NoticeRecipient`` says what a recipient holds; this module words the request to delete or
anonymise it (PIPL Art. 47, GB/T 35273-2020 §8.3) with a reply-by date. As in the exporters, the
document's language is chosen by ``lang`` ("zh" or "en"), not by the interface language, so a DPO
working in English can still send a Chinese letter.
"""

import datetime
import re
from typing import BinaryIO

from django.utils import timezone

from processors.models import Controller, DeletionNoticeLetter
from processors.notices import DeletionNotice, NoticeRecipient

LANGUAGES = ("zh", "en")
REPLY_DAYS = 15

# Word refuses XML-invalid characters and e-mail clients mangle the rest of C0/C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_WORDING = {
    "zh": {
        "title": "个人信息删除通知函",
        "to": "致：{recipient}",
        "sender_default": "我方",
        "intro": "{sender}曾向贵方提供（或通过贵方处理）以下种类的个人信息：",
        "services": "涉及的服务/功能：{services}",
        "request": (
            "依据《中华人民共和国个人信息保护法》第四十七条及国家标准《信息安全技术 个人信息安全规范》"
            "（GB/T 35273-2020）第8.3条，请贵方删除或匿名化处理从{sender}接收的上述种类的个人信息，"
            "并于{reply_by}前书面回复确认处理完毕。"
        ),
        "retention": (
            "如法律、行政法规规定的保存期限尚未届满，或删除个人信息从技术上难以实现，"
            "请停止除存储和采取必要的安全保护措施之外的处理，并告知我方。"
        ),
        "contact": "如有疑问，请与我方个人信息保护负责人联系。",
        "date": "日期：{today}",
        "separator": "、",
        "bullet": "• ",
    },
    "en": {
        "title": "Notice to delete personal information",
        "to": "To: {recipient}",
        "sender_default": "We",
        "intro": "{sender} provided you with (or had you process) personal information of these categories:",
        "services": "Services concerned: {services}",
        "request": (
            "Under Article 47 of the Personal Information Protection Law of the People's Republic of China "
            "and clause 8.3 of GB/T 35273-2020 (Information security technology — Personal information "
            "security specification), please delete or anonymise the personal information of the categories "
            "listed above that you received from {sender_object}, and confirm in writing by {reply_by} that "
            "this has been done."
        ),
        "retention": (
            "If a retention period required by law has not yet expired, or deletion is technically "
            "infeasible, please stop all processing other than storage and the necessary security "
            "measures, and tell us."
        ),
        "contact": "For any question, please contact our personal information protection officer.",
        "date": "Date: {today}",
        "separator": "; ",
        "bullet": "- ",
    },
}


def default_reply_by(today: datetime.date | None = None) -> datetime.date:
    """The reply-by date a letter proposes: today + 15 days."""
    return (today or timezone.localdate()) + datetime.timedelta(days=REPLY_DAYS)


def _clean(text: str) -> str:
    return _CONTROL.sub("", text or "")


def _name(obj: object, lang: str) -> str:
    zh, en = getattr(obj, "name_zh", "") or "", getattr(obj, "name_en", "") or ""
    return _clean((en or zh) if lang == "en" else (zh or en))


def _date(value: datetime.date, lang: str) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if lang == "zh" else value.isoformat()


def notice_letter_parts(
    recipient: NoticeRecipient,
    *,
    lang: str,
    reply_by: datetime.date,
    controller: Controller | None = None,
    today: datetime.date | None = None,
) -> dict[str, object]:
    """The letter's pieces (title, addressee, paragraphs, category names) in ``lang``."""
    if lang not in LANGUAGES:
        raise ValueError(f"Unknown language {lang!r}; use zh or en.")
    wording = _WORDING[lang]
    sender = _name(controller, lang) if controller is not None else wording["sender_default"]
    services = wording["separator"].join(
        _clean((service.name_en or service.name) if lang == "en" else service.name)
        for service in recipient.services.values()
    )
    fields = {
        "sender": sender,
        "sender_object": sender if controller is not None else "us",
        "reply_by": _date(reply_by, lang),
        "recipient": _name(recipient.processor, lang),
        "services": services,
        "today": _date(today or timezone.localdate(), lang),
    }
    return {
        "title": wording["title"],
        "to": wording["to"].format(**fields),
        "intro": wording["intro"].format(**fields),
        "categories": [_name(category, lang) for category in recipient.categories.values()],
        "services": wording["services"].format(**fields) if services else "",
        "paragraphs": [wording["request"].format(**fields), wording["retention"], wording["contact"]],
        "closing": [sender, wording["date"].format(**fields)],
        "bullet": wording["bullet"],
    }


def notice_letter_text(
    notice_recipient: NoticeRecipient,
    *,
    lang: str,
    reply_by: datetime.date,
    controller: Controller | None = None,
) -> str:
    """The letter as plain e-mail text (for copy and paste)."""
    parts = notice_letter_parts(notice_recipient, lang=lang, reply_by=reply_by, controller=controller)
    lines = [parts["title"], "", parts["to"], "", parts["intro"]]
    lines += [f"{parts['bullet']}{name}" for name in parts["categories"]]
    if parts["services"]:
        lines += ["", parts["services"]]
    for paragraph in parts["paragraphs"]:
        lines += ["", paragraph]
    lines += ["", *parts["closing"]]
    return "\n".join(lines) + "\n"


def notice_letter_docx(
    notice_recipient: NoticeRecipient,
    *,
    lang: str,
    reply_by: datetime.date,
    stream: BinaryIO,
    controller: Controller | None = None,
) -> None:
    """Write the letter as a Word document to ``stream``."""
    # Imported here: python-docx is only needed when a letter is downloaded.
    from docx import Document

    parts = notice_letter_parts(notice_recipient, lang=lang, reply_by=reply_by, controller=controller)
    document = Document()
    document.add_heading(parts["title"], level=1)
    document.add_paragraph(parts["to"])
    document.add_paragraph(parts["intro"])
    for name in parts["categories"]:
        document.add_paragraph(name, style="List Bullet")
    if parts["services"]:
        document.add_paragraph(parts["services"])
    for paragraph in parts["paragraphs"]:
        document.add_paragraph(paragraph)
    for line in parts["closing"]:
        document.add_paragraph(line)
    document.save(stream)


def recipient_category_codes(recipient: NoticeRecipient) -> list[str]:
    """The codes a letter to this recipient records (sorted, as stored)."""
    return sorted(category.code for category in recipient.categories.values())


def notice_letters_latest(notice: DeletionNotice) -> dict[int, DeletionNoticeLetter]:
    """Per recipient (processor id), the latest letter recorded for exactly this notice's categories."""
    wanted = notice.held_codes()
    letters = DeletionNoticeLetter.objects.filter(controller=notice.controller, processor_id__in=wanted)
    latest: dict[int, DeletionNoticeLetter] = {}
    for letter in letters.order_by("processor_id", "-sent_at", "-id"):
        if letter.processor_id not in latest and sorted(letter.categories) == wanted[letter.processor_id]:
            latest[letter.processor_id] = letter
    return latest
