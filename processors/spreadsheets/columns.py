"""The disclosure-table column spec: which headers mean which field, and how each cell is read.

Real tables name the same column a dozen ways (服务主体, 第三方名称, SDK运营方, Subprocessor…); this
is the one place that knows them. Headers are compared with ``normalize_key`` so width, case and
spacing never matter. A header the spec does not know is an error unless the caller maps it.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from processors.models import Relationship, SharingMethod, TransferMechanism
from processors.spreadsheets.cells import (
    CellError,
    parse_bool,
    parse_choice,
    parse_countries,
    parse_url,
    split_list,
)
from processors.text import clean_text, normalize_key

IGNORE = "ignore"

SHARING_METHOD_SYNONYMS = {
    "接口传输": SharingMethod.SERVER_TRANSFER,
    "API": SharingMethod.SERVER_TRANSFER,
    "API接口": SharingMethod.SERVER_TRANSFER,
    "服务器传输": SharingMethod.SERVER_TRANSFER,
    "后台传输": SharingMethod.SERVER_TRANSFER,
    "服务端传输": SharingMethod.SERVER_TRANSFER,
    "SDK采集": SharingMethod.SDK_COLLECTION,
    "SDK收集": SharingMethod.SDK_COLLECTION,
    "SDK": SharingMethod.SDK_COLLECTION,
    "SDK自行采集": SharingMethod.SDK_COLLECTION,
    "文件传输": SharingMethod.FILE_TRANSFER,
    "批量传输": SharingMethod.FILE_TRANSFER,
    "离线传输": SharingMethod.FILE_TRANSFER,
    "系统访问": SharingMethod.RECIPIENT_ACCESS,
    "人工提供": SharingMethod.MANUAL,
    "线下提供": SharingMethod.MANUAL,
    "其他": SharingMethod.OTHER,
}

RELATIONSHIP_SYNONYMS = {
    "委托处理": Relationship.ENTRUSTED,
    "委托": Relationship.ENTRUSTED,
    "受托方": Relationship.ENTRUSTED,
    "受托人": Relationship.ENTRUSTED,
    "processor": Relationship.ENTRUSTED,
    "转委托": Relationship.SUB_ENTRUSTED,
    "sub-processor": Relationship.SUB_ENTRUSTED,
    "subprocessor": Relationship.SUB_ENTRUSTED,
    "共同处理": Relationship.JOINT,
    "共同处理者": Relationship.JOINT,
    "joint controller": Relationship.JOINT,
    "提供": Relationship.PROVISION,
    "共享": Relationship.PROVISION,
    "对外提供": Relationship.PROVISION,
    "其他个人信息处理者": Relationship.PROVISION,
    "controller": Relationship.PROVISION,
    "third party": Relationship.PROVISION,
    "接入第三方": Relationship.EMBEDDED_SDK,
    "第三方SDK": Relationship.EMBEDDED_SDK,
    "SDK": Relationship.EMBEDDED_SDK,
    "合并分立": Relationship.MERGER_TRANSFER,
    "转让": Relationship.MERGER_TRANSFER,
    "公开": Relationship.PUBLIC_DISCLOSURE,
    "公开披露": Relationship.PUBLIC_DISCLOSURE,
}

TRANSFER_MECHANISM_SYNONYMS = {
    "安全评估": TransferMechanism.SECURITY_ASSESSMENT,
    "数据出境安全评估": TransferMechanism.SECURITY_ASSESSMENT,
    "标准合同": TransferMechanism.STANDARD_CONTRACT,
    "个人信息出境标准合同": TransferMechanism.STANDARD_CONTRACT,
    "认证": TransferMechanism.CERTIFICATION,
    "个人信息保护认证": TransferMechanism.CERTIFICATION,
}


def _text(cell: str) -> str:
    return clean_text(cell)


def _verbatim(cell: str) -> str:
    # Published lists are kept exactly as printed (line breaks too), only trimmed.
    return (cell or "").strip()


def _permissions(cell: str) -> str:
    return "\n".join(split_list(cell).items)


def _single_country(cell: str) -> str:
    codes = parse_countries(cell)
    if len(codes) > 1:
        raise CellError(
            _("Give one country or region of establishment, not %(count)s.") % {"count": len(codes)}
        )
    return codes[0] if codes else ""


@dataclass(frozen=True)
class Column:
    """One field of the table: the headers that mean it and how its cells are read."""

    field: str
    label: Promise
    headers: Sequence[str]
    parse: Callable[[str], Any] = _text
    required: bool = False


@dataclass(frozen=True)
class ColumnSpec:
    """A table shape: its columns and the lookup from header key to field."""

    columns: Sequence[Column]
    by_header: dict[str, str] = field(init=False)
    by_field: dict[str, Column] = field(init=False)

    def __post_init__(self) -> None:
        by_header: dict[str, str] = {}
        for column in self.columns:
            for header in (column.field, *column.headers):
                by_header.setdefault(normalize_key(header), column.field)
        object.__setattr__(self, "by_header", by_header)
        object.__setattr__(self, "by_field", {column.field: column for column in self.columns})

    @property
    def fields(self) -> list[str]:
        return [column.field for column in self.columns]

    def field_for(self, header: str, header_map: Mapping[str, str] | None = None) -> str | None:
        """The field a header means (the caller's map first), IGNORE, or None when unknown."""
        key = normalize_key(header)
        for given, target in (header_map or {}).items():
            if normalize_key(given) == key:
                return target
        return self.by_header.get(key)


DISCLOSURE_COLUMNS = ColumnSpec(
    columns=(
        Column(
            "service",
            gettext_lazy("service or feature"),
            (
                "服务/功能名称",
                "Service/feature",
                "服务名称",
                "功能名称",
                "功能",
                "服务",
                "业务功能",
                "SDK名称",
                "第三方SDK名称",
                "产品/服务",
                "产品或服务",
                "产品名称",
                "Service",
                "Feature",
                "SDK",
                "SDK name",
            ),
            required=True,
        ),
        Column(
            "recipient",
            gettext_lazy("recipient"),
            (
                "服务主体",
                "第三方名称",
                "第三方主体",
                "第三方",
                "第三方公司名称",
                "SDK运营方",
                "SDK提供方",
                "SDK开发者",
                "合作方",
                "合作方名称",
                "接收方",
                "接收方名称",
                "受托方",
                "共享对象",
                "Subprocessor",
                "Sub-processor",
                "Name",
                "Entity",
                "Recipient",
                "Third party",
                "Vendor",
            ),
            required=True,
        ),
        Column(
            "data_items",
            gettext_lazy("personal information"),
            (
                "处理个人信息范围",
                "Personal information processed",
                "共享信息名称",
                "共享个人信息",
                "共享的个人信息",
                "个人信息类型",
                "个人信息种类",
                "个人信息字段",
                "收集的个人信息",
                "收集个人信息类型",
                "涉及个人信息",
                "个人信息",
                "Data categories",
                "Personal data",
                "Data",
                "Categories of personal data",
            ),
            parse=_verbatim,
            required=True,
        ),
        Column(
            "purpose",
            gettext_lazy("purpose"),
            (
                "处理个人信息目的",
                "使用目的",
                "目的",
                "共享目的",
                "处理目的",
                "收集目的",
                "Purpose",
                "Purposes",
            ),
            parse=_verbatim,
        ),
        Column(
            "actions",
            gettext_lazy("processing operations"),
            ("处理个人信息方式", "处理方式", "Processing method", "Processing operations", "Processing"),
            parse=_verbatim,
        ),
        Column(
            "usage_scenario",
            gettext_lazy("usage scenario"),
            ("使用场景", "场景", "Usage scenario", "Scenario"),
        ),
        Column(
            "sharing_method",
            gettext_lazy("sharing method"),
            ("共享方式", "收集方式", "传输方式", "Sharing method", "Collection method"),
            parse=lambda cell: parse_choice(
                cell, choices=SharingMethod.choices, synonyms=SHARING_METHOD_SYNONYMS
            ),
        ),
        Column(
            "feature_necessary",
            gettext_lazy("necessary for the feature"),
            ("是否必要", "是否必需", "必要性", "Necessary", "Required"),
            parse=parse_bool,
        ),
        Column(
            "device_permissions",
            gettext_lazy("device permissions"),
            (
                "可能调用的权限",
                "调用权限",
                "权限",
                "申请权限",
                "所需权限",
                "Permissions",
                "Device permissions",
            ),
            parse=_permissions,
        ),
        Column(
            "privacy_policy_url",
            gettext_lazy("privacy policy link"),
            (
                "隐私政策链接",
                "隐私政策",
                "隐私政策地址",
                "第三方隐私政策链接",
                "SDK隐私政策链接",
                "Privacy policy",
                "Privacy policy URL",
                "Privacy policy link",
            ),
            parse=parse_url,
        ),
        Column(
            "country",
            gettext_lazy("country or region"),
            ("所在国家/地区", "国家/地区", "所在地", "Location", "Country", "Country/Region"),
            parse=_single_country,
        ),
        Column(
            "transfer_mechanism",
            gettext_lazy("cross-border mechanism"),
            ("出境合规机制", "出境方式", "Transfer mechanism"),
            parse=lambda cell: parse_choice(
                cell, choices=TransferMechanism.choices, synonyms=TRANSFER_MECHANISM_SYNONYMS
            ),
        ),
        Column(
            "relationship",
            gettext_lazy("relationship"),
            ("关系类型", "关系", "处理关系", "Relationship"),
            parse=lambda cell: parse_choice(
                cell, choices=Relationship.choices, synonyms=RELATIONSHIP_SYNONYMS
            ),
        ),
        Column(IGNORE, gettext_lazy("ignored"), ("序号", "编号", "No.", "No", "#")),
    )
)
