"""Contract test: schemathesis drives every API operation from its own schema, as a superuser.

It runs against the Django WSGI application inside the test transaction, on a small demo-like register,
and requires no server error and no response that breaks the schema (status codes, content types,
bodies and headers as documented). ``positive_data_acceptance`` is left out on purpose: a string that
fits the schema can still name no category or purpose, and that is a documented 400, not a bug.
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from processors.api import policy
from processors.models import Processor
from tests.builders import make_controller, make_operation, make_processor, make_service

# Per operation and generation mode; with ~18 operations this keeps the test well under a minute.
EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def demo_register(db):
    controller = make_controller(code="itrus", name_zh="北京天威诚信电子商务服务有限公司")
    identity = make_service(controller=controller, name="身份认证服务")
    sms = make_service(controller=controller, name="短信服务")
    authorities = make_processor(
        name_en="Digicert Certum GlobalSign Sectigo Actalis", kind=Processor.Kind.GROUP
    )
    make_processor(name_en="Sectigo", member_of=authorities, country="GB")
    make_operation(service=identity, data_items=["姓名", "身份证号", "手机号", "银行卡号"])
    make_operation(service=sms, data_items=["手机号"], purposes=["sms_otp"])
    make_operation(
        service=make_service(controller=controller, name="分销商"),
        processor=authorities,
        data_items=["姓名", "手机号", "邮箱", "神秘字段"],
        purposes=["certificate_issuance"],
        cross_border=True,
        destination_countries=["US", "GB"],
    )


@pytest.fixture
def api_schema(demo_register, settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    # Django's test client keeps the test transaction's connection across requests; a bare WSGI client
    # must do the same, or the request signals would close it mid-test.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Generated writes come fast; the throttle is tested elsewhere.
    monkeypatch.setattr(policy.WriteRateThrottle, "THROTTLE_RATES", {"writes": "100000/min"})
    monkeypatch.setattr(policy.ImportRateThrottle, "THROTTLE_RATES", {"imports": "100000/min"})
    cache.clear()
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(admin_user) -> str:
    return Token.objects.create(user=admin_user).key


def run_operation(operation, mode: GenerationMode, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

    check()


def test_the_api_answers_every_generated_request_as_its_schema_says(api_schema, token):
    failures, tried = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tried += 1
            try:
                run_operation(operation, mode, token)
            except Unsatisfiable:
                # A free-form string (a code in a path) has no invalid form for the negative mode to make.
                assert mode is GenerationMode.NEGATIVE
            except (Exception, FailureGroup) as failure:  # every operation's failures, reported together
                failures.append(f"{operation.label} ({mode}): {failure}")
    assert tried >= 30, "the schema lost operations"
    assert not failures, "\n\n".join(failures)
