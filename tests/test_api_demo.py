"""On the iTrus demo register (load_demo), the API answers "who receives X?" the way a DPO expects."""

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from processors.models import Operation, Processor

pytestmark = pytest.mark.django_db

SMS_VENDORS = [
    "北京亿美软通科技有限公司",
    "福建未来无线信息技术有限公司",
    "上海创蓝文化传播有限公司",
    "玄武短信通道",
    "大汉三通短信通道",
    "深博金短信通道",
    "蔚岛短信通道",
    "十堰短信通道",
]
IDENTITY_VENDORS_WITH_PHONE = [
    "金联汇通信息技术有限公司",
    "北京银联商务有限公司",
    "贵州数据宝网络科技有限公司",
    "元素征信有限责任公司",
    "鹏元征信有限公司",
    "天聚地合（苏州）数据股份有限公司",
    "天聚地合(苏州)科技股份有限公司",
    "上海敏懂科技有限公司",
]
DISPUTE_RECIPIENTS = ["仲裁委", "武汉仲裁委员会", "鹰潭仲裁委", "法证链科技创新有限公司"]
FOREIGN_AUTHORITIES = [
    "DigiCert Inc",
    "Asseco Data Systems S.A.",
    "GlobalSign nv-sa",
    "Sectigo Limited",
    "Actalis S.p.A.",
]
NOT_RECEIVING_PHONE = [
    "北京市商汤科技开发有限公司",
    "百度云计算技术(北京)有限公司",
    "深圳前海微众银行股份有限公司",
    "至信链",
    "上证所信息网络有限公司",
]
ID_DOCUMENT_WORDS = ("身份证", "证件号码", "护照", "通行证", "绿卡", "驾驶证")


@pytest.fixture
def demo(admin_user) -> APIClient:
    call_command("load_demo", stdout=StringIO())
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def names(response) -> set[str]:
    assert response.status_code == 200, response.content[:300]
    return {row["name_zh"] or row["name_en"] for row in response.json()["results"]}


def test_phone_numbers_go_to_sms_identity_dispute_and_certificate_recipients(demo):
    receivers = names(demo.get("/api/v1/processors/?receives=手机号&page_size=200"))
    expected = SMS_VENDORS + IDENTITY_VENDORS_WITH_PHONE + DISPUTE_RECIPIENTS + FOREIGN_AUTHORITIES
    assert set(expected) <= receivers


def test_phone_numbers_do_not_go_to_face_signature_or_evidence_chain_recipients(demo):
    receivers = names(demo.get("/api/v1/processors/?receives=手机号&page_size=200"))
    assert not receivers & set(NOT_RECEIVING_PHONE)


def test_every_recipient_of_an_identity_document_is_found_by_the_identity_group(demo):
    published = Operation.objects.filter(
        pk__in=[
            operation.pk
            for operation in Operation.objects.all()
            if any(word in operation.data_items_text for word in ID_DOCUMENT_WORDS)
        ]
    )
    recipients = Processor.objects.filter(operations__in=published) | Processor.objects.filter(
        member_of__operations__in=published
    )
    expected = {processor.name_zh or processor.name_en for processor in recipients.distinct()}
    assert names(demo.get("/api/v1/processors/?receives=identity&page_size=200")) == expected


def test_a_misspelt_id_number_is_a_400_suggesting_the_right_name(demo):
    response = demo.get("/api/v1/operations/?category=身份正号")
    assert response.status_code == 400
    assert "身份证号" in response.json()["error"]["message"]


def test_the_via_list_names_the_sms_service_for_an_sms_vendor(demo):
    rows = demo.get("/api/v1/processors/?receives=phone number&search=亿美软通").json()["results"]
    assert [via["service"]["name"] for row in rows for via in row["via"]] == ["短信服务"]


def test_an_anonymous_post_to_the_demo_register_is_refused(demo):
    assert APIClient().post("/api/v1/processors/", {"name_zh": "匿名公司"}, format="json").status_code == 401
