"""Small builders for test data: each makes one valid object, overridable field by field."""

import itertools
from collections.abc import Sequence

from processors import services
from processors.models import (
    Controller,
    ControllerMembership,
    ControllerRole,
    Operation,
    ProcessingAction,
    Processor,
    Purpose,
    Service,
)

_counter = itertools.count(1)


def make_controller(**fields) -> Controller:
    number = next(_counter)
    fields.setdefault("code", f"controller-{number}")
    fields.setdefault("name_zh", f"测试公司{number}")
    return services.controller_create(**fields)


def make_processor(**fields) -> Processor:
    if not fields.get("name_zh") and not fields.get("name_en"):
        fields["name_zh"] = f"测试受托方{next(_counter)}有限公司"
    return services.processor_create(**fields)


def make_service(controller: Controller | None = None, **fields) -> Service:
    fields.setdefault("name", f"测试服务{next(_counter)}")
    return services.service_create(controller=controller or make_controller(), **fields)


def make_operation(
    *,
    service: Service | None = None,
    processor: Processor | None = None,
    data_items: Sequence[str] = ("姓名", "手机号"),
    purposes: Sequence[str] = ("identity_verification",),
    actions: Sequence[str] = ("collect", "store"),
    **fields,
) -> Operation:
    return services.operation_create(
        service=service or make_service(),
        processor=processor or make_processor(),
        data_items=data_items,
        purposes=list(Purpose.objects.filter(code__in=purposes)),
        actions=list(ProcessingAction.objects.filter(code__in=actions)),
        **fields,
    )


def make_member(user, *controllers: Controller, role: int = ControllerRole.ADMIN) -> None:
    """Make a (non-superuser) test user a member of the controllers, by default of every one so far."""
    for controller in controllers or Controller.objects.all():
        services.controller_membership_grant(controller=controller, user=user, role=role)


def make_membership(controller: Controller, *, user=None, group=None, role: int) -> ControllerMembership:
    """A membership of a user or a group."""
    return ControllerMembership.objects.create(controller=controller, user=user, group=group, role=role)
