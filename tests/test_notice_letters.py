import datetime
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from docx import Document

from processors import services
from processors.models import ControllerRole, DeletionNoticeLetter
from processors.notice_letters import default_reply_by, notice_letter_docx, notice_letter_text
from processors.notices import deletion_notice
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

REPLY_BY = datetime.date(2026, 12, 17)


@pytest.fixture
def sms_flow():
    controller = make_controller(name_zh="示例科技有限公司", name_en="Example Tech Ltd.")
    processor = make_processor(
        name_zh="北京短信服务有限公司", name_en="Beijing SMS Ltd.", contact_email="dpo@sms.example"
    )
    make_operation(
        service=make_service(controller, name="短信验证", name_en="SMS verification"),
        processor=processor,
        data_items=("姓名", "手机号"),
    )
    return controller, processor


def recipient_of(controller, processor):
    notice = deletion_notice(["手机号", "姓名"], controller)
    return next(r for r in notice.recipients if r.processor == processor)


def docx_text(recipient, lang, controller) -> str:
    stream = io.BytesIO()
    notice_letter_docx(recipient, lang=lang, reply_by=REPLY_BY, stream=stream, controller=controller)
    stream.seek(0)
    return "\n".join(paragraph.text for paragraph in Document(stream).paragraphs)


def test_the_chinese_docx_names_the_recipient_every_category_and_article_47(sms_flow):
    controller, processor = sms_flow
    recipient = recipient_of(controller, processor)

    text = docx_text(recipient, "zh", controller)

    assert "北京短信服务有限公司" in text and "示例科技有限公司" in text
    assert all(category.name_zh in text for category in recipient.categories.values())
    assert "第四十七条" in text and "8.3" in text and "2026年12月17日" in text


def test_the_english_docx_names_the_recipient_every_category_and_article_47(sms_flow):
    controller, processor = sms_flow
    recipient = recipient_of(controller, processor)

    text = docx_text(recipient, "en", controller)

    assert "Beijing SMS Ltd." in text
    assert all((category.name_en or category.name_zh) in text for category in recipient.categories.values())
    assert "Article 47" in text and "2026-12-17" in text


def test_the_email_text_asks_to_delete_or_anonymise_in_both_languages(sms_flow):
    controller, processor = sms_flow
    recipient = recipient_of(controller, processor)

    zh = notice_letter_text(recipient, lang="zh", reply_by=REPLY_BY, controller=controller)
    en = notice_letter_text(recipient, lang="en", reply_by=REPLY_BY, controller=controller)

    assert "删除或匿名化" in zh and "第四十七条" in zh and "短信验证" in zh
    assert "delete or anonymise" in en and "Article 47" in en and "SMS verification" in en


def test_control_characters_are_stripped_from_the_letter(sms_flow):
    controller, processor = sms_flow
    recipient = recipient_of(controller, processor)
    recipient.processor.name_zh = "北京\x07短信服务有限公司"

    assert "\x07" not in notice_letter_text(recipient, lang="zh", reply_by=REPLY_BY)
    assert "北京短信服务有限公司" in docx_text(recipient, "zh", controller)


def test_the_reply_by_date_defaults_to_fifteen_days_from_today():
    assert default_reply_by(datetime.date(2026, 12, 2)) == datetime.date(2026, 12, 17)


def test_recording_a_sent_letter_keeps_the_user_and_time_in_history(sms_flow, admin_user):
    controller, processor = sms_flow

    letter = services.notice_letter_record_sent(
        processor=processor, controller=controller, categories=["b", "a"], reply_by=REPLY_BY, user=admin_user
    )

    assert letter.sent_at is not None and letter.sent_by == admin_user and letter.sent_by_name == "admin"
    assert letter.categories == ["a", "b"]
    assert letter.history.get().history_user == admin_user


def test_acknowledging_a_letter_is_recorded_in_history(sms_flow, admin_user):
    controller, processor = sms_flow
    letter = services.notice_letter_record_sent(
        processor=processor, controller=controller, categories=["a"], reply_by=REPLY_BY, user=admin_user
    )

    services.notice_letter_acknowledge(letter=letter, user=admin_user, note="confirmed by e-mail")

    letter.refresh_from_db()
    assert letter.acknowledged and "confirmed by e-mail" in letter.note
    assert letter.history.count() == 2


def page_url(controller) -> str:
    return reverse("processors:deletion-notice") + f"?categories=手机号、姓名&controller={controller.code}"


def test_marking_sent_on_the_page_records_the_letter(sms_flow, admin_client, admin_user):
    controller, processor = sms_flow

    response = admin_client.post(
        page_url(controller) + "&reply_by=2026-12-20", {"recipient": processor.pk, "action": "sent"}
    )

    assert response.status_code == 302
    letter = DeletionNoticeLetter.objects.get()
    assert letter.processor == processor and letter.sent_by == admin_user
    assert letter.reply_by == datetime.date(2026, 12, 20)
    assert set(letter.categories) == {c.code for c in recipient_of(controller, processor).categories.values()}


def test_the_page_lists_recipients_still_open_until_acknowledged(sms_flow, admin_client):
    controller, processor = sms_flow
    other = make_processor(name_zh="上海推送有限公司")
    make_operation(service=make_service(controller), processor=other, data_items=("手机号",))
    admin_client.post(page_url(controller), {"recipient": processor.pk, "action": "sent"})

    response = admin_client.get(page_url(controller))

    open_names = {row["recipient"].processor.pk: row["letter"] for row in response.context["open_rows"]}
    assert set(open_names) == {processor.pk, other.pk}
    assert open_names[other.pk] is None and open_names[processor.pk].sent_at is not None
    content = response.content.decode()
    assert (
        'value="acknowledge"' in content and "第四十七条" in content
    )  # the e-mail text, in the page's language

    admin_client.post(page_url(controller), {"recipient": processor.pk, "action": "acknowledge"})
    response = admin_client.get(page_url(controller))
    assert [row["recipient"].processor for row in response.context["open_rows"]] == [other]


def test_the_page_downloads_a_letter_as_docx_and_as_text(sms_flow, admin_client):
    controller, processor = sms_flow

    docx = admin_client.get(page_url(controller) + f"&format=docx&recipient={processor.pk}&lang=en")
    text = admin_client.get(page_url(controller) + f"&format=txt&recipient={processor.pk}&lang=zh")

    assert docx.status_code == 200 and docx.content[:2] == b"PK"
    assert "Article 47" in "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert "第四十七条" in text.content.decode()


@pytest.mark.parametrize("recipient", ["²", "99999999999999999999", "abc", ""])
def test_a_letter_for_a_recipient_that_is_no_id_of_the_notice_is_not_found(sms_flow, admin_client, recipient):
    controller, _processor = sms_flow

    response = admin_client.get(page_url(controller) + f"&format=txt&recipient={recipient}")

    assert response.status_code == 404


def test_a_user_without_change_permission_cannot_mark_sent(sms_flow, client, django_user_model):
    controller, processor = sms_flow
    reader = django_user_model.objects.create_user("reader", password="reader-password-for-tests")
    reader.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(reader)
    services.controller_membership_grant(controller=controller, user=reader, role=ControllerRole.VIEWER)

    page = client.get(page_url(controller))
    response = client.post(page_url(controller), {"recipient": processor.pk, "action": "sent"})

    assert page.status_code == 200 and not page.context["can_record"]
    assert "Mark sent" not in page.content.decode() and "标记为已发送" not in page.content.decode()
    assert response.status_code == 403
    assert not DeletionNoticeLetter.objects.exists()
