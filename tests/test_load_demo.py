import io

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.utils import translation

from processors.models import (
    ConsentType,
    Controller,
    DataItem,
    LegalBasis,
    Operation,
    Processor,
    ProcessorAlias,
    Relationship,
    Service,
    SharingMethod,
)

pytestmark = pytest.mark.django_db

CERTIFICATE_SERVICES = {"分销商", "业支", "阿里云业支", "VcertCloud"}


@pytest.fixture(autouse=True)
def english():
    # The assertions read the English output; the default language is Chinese.
    with translation.override("en"):
        yield


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def register_state() -> dict:
    models = (Controller, Processor, ProcessorAlias, Service, Operation, DataItem)
    state = {model.__name__: model.objects.count() for model in models}
    for model in (Controller, Processor, Service, Operation):
        state[f"{model.__name__} last change"] = model.objects.aggregate(last=Max("updated_at"))["last"]
    state["data items"] = sorted(
        DataItem.objects.values_list("id", "operation_id", "position", "category_id")
    )
    return state


def test_load_demo_builds_the_itrus_register_with_43_operations_and_no_unmapped_items():
    load_demo()

    itrus = Controller.objects.get(code="itrus")
    assert Operation.objects.filter(service__controller=itrus).count() == 43
    unmapped = list(DataItem.objects.filter(category__isnull=True).values_list("text", flat=True))
    assert unmapped == []


def test_load_demo_twice_changes_nothing():
    load_demo()
    before = register_state()

    output = load_demo()

    assert register_state() == before
    assert "0 created, 0 changed, 43 unchanged" in output


def test_the_controller_facts_come_from_the_privacy_policy():
    load_demo()

    itrus = Controller.objects.get(code="itrus")
    assert itrus.name_zh == "北京天威诚信电子商务服务有限公司"
    assert itrus.name_en == "iTrusChina Co., Ltd."
    assert itrus.country.code == "CN"
    assert itrus.website == "https://www.itrus.com.cn"
    assert itrus.contact_email == "service-appeal@itrus.com.cn"


def test_the_foreign_certificate_authority_operations_are_cross_border_to_five_countries():
    load_demo()

    operations = Operation.objects.filter(cross_border=True)
    assert {operation.service.name for operation in operations} == CERTIFICATE_SERVICES
    for operation in operations:
        assert sorted(country.code for country in operation.destination_countries) == [
            "BE",
            "GB",
            "IT",
            "PL",
            "US",
        ]
        assert operation.relationship == Relationship.PROVISION
        assert operation.transfer_mechanism == ""


def test_the_certificate_authority_brands_are_found_by_alias():
    load_demo()

    group = Processor.objects.get(kind=Processor.Kind.GROUP, name_en__startswith="Digicert")
    assert sorted(group.members.values_list("name_en", "country")) == [
        ("Actalis S.p.A.", "IT"),
        ("Asseco Data Systems S.A.", "PL"),
        ("DigiCert Inc", "US"),
        ("GlobalSign nv-sa", "BE"),
        ("Sectigo Limited", "GB"),
    ]


def test_every_organisation_in_the_demo_has_a_country():
    load_demo()

    organisations = Processor.objects.filter(kind=Processor.Kind.ORGANISATION)
    assert list(organisations.filter(country="").values_list("name_zh", flat=True)) == []


@pytest.mark.parametrize(
    ("service", "relationship", "consent_type"),
    [
        ("实名认证服务", Relationship.ENTRUSTED, ConsentType.ORDINARY),
        ("短信服务", Relationship.ENTRUSTED, ConsentType.ORDINARY),
        ("信息化/售后", Relationship.ENTRUSTED, ConsentType.ORDINARY),
        ("仲裁服务", Relationship.PROVISION, ConsentType.SEPARATE),
        ("调解服务", Relationship.PROVISION, ConsentType.SEPARATE),
        ("VcertCloud", Relationship.PROVISION, ConsentType.SEPARATE),
    ],
)
def test_each_service_gets_the_classification_of_the_demo_file(service, relationship, consent_type):
    load_demo()

    for operation in Operation.objects.filter(service__name=service):
        assert operation.relationship == relationship
        assert operation.consent_type == consent_type
        assert operation.legal_basis == LegalBasis.CONSENT
        assert operation.sharing_method == SharingMethod.SERVER_TRANSFER


def test_every_demo_operation_is_classified():
    load_demo()

    assert not Operation.objects.filter(relationship="").exists()
