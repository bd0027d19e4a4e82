"""The disclosure-table column spec: which headers mean which field, and how each cell is read.

Real tables name the same column a dozen ways (服务主体, 第三方名称, SDK运营方, Subprocessor…); this
is the one place that knows them. Headers are compared with ``normalize_key`` so width, case and
spacing never matter. A header the spec does not know is an error unless the caller maps it.

Why one module: most of its length is the synonym lists, one per field, and each list only makes sense
beside the field it names and the parser that reads its cells; split apart, a header would be added in
one file and its field changed in another.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from processors.models import LegalBasis, Relationship, SharingMethod, TransferMechanism
from processors.spreadsheets.cells import (
    CellError,
    LocationCell,
    parse_bool,
    parse_choice,
    parse_locations,
    parse_url,
    split_list,
)
from processors.text import clean_text, normalize_key

IGNORE = "ignore"

# Words that end a company's legal name, in both languages: a column of them names recipients.
_COMPANY_NAME = re.compile(
    r"(有限公司|有限责任公司|股份公司|集团|公司|研究院|中心|\b(?:Inc|LLC|Ltd|Limited|GmbH|Corp|Corporation|"
    r"S\.?A\.?S?|B\.?V|AB|PLC|PBC|Pte|Co)\b\.?)",
    re.IGNORECASE,
)
CJK_TEXT = re.compile("[\u4e00-\u9fff]")
_ADDRESS = re.compile(r"https?://|www\.", re.IGNORECASE)
# A proposal needs most of the column's cells to agree.
PROPOSAL_SHARE = 0.6

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


def _one_line(cell: str) -> str:
    """A published phrase kept as written, its lines (``<br>``, list items) joined by a semicolon."""
    lines = [line.strip() for line in (cell or "").strip().split("\n") if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return ("；" if CJK_TEXT.search(cell) else "; ").join(line.rstrip("；;") for line in lines)


def _permissions(cell: str) -> str:
    return "\n".join(split_list(cell).items)


def _single_country(cell: str) -> str:
    places = parse_locations(cell)
    if not places.text:
        return ""
    if places.unknown or places.vague or places.regions:
        raise CellError(
            _("“%(value)s” is not a country this register knows.")
            % {"value": ", ".join((*places.unknown, *places.vague, *places.regions))}
        )
    codes = places.countries
    if len(codes) > 1:
        raise CellError(
            _("Give one country or region of establishment, not %(count)s.") % {"count": len(codes)}
        )
    return codes[0] if codes else ""


def _locations(cell: str) -> LocationCell | str:
    places = parse_locations(cell)
    return places if places.text else ""


LEGAL_BASIS_SYNONYMS = {
    "同意": LegalBasis.CONSENT,
    "个人同意": LegalBasis.CONSENT,
    "consent": LegalBasis.CONSENT,
    "合同": LegalBasis.CONTRACT,
    "订立、履行合同所必需": LegalBasis.CONTRACT,
    "contract": LegalBasis.CONTRACT,
    "人力资源管理": LegalBasis.HR,
    "法定职责": LegalBasis.LEGAL_DUTY,
    "法定义务": LegalBasis.LEGAL_DUTY,
    "legal obligation": LegalBasis.LEGAL_DUTY,
}


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
                "服务",
                "业务功能",
                "业务名称",
                "业务场景名称",
                "SDK名称",
                "第三方SDK名称",
                "使用SDK名称",
                "合作SDK名称",
                "接入SDK名称",
                "SDK",
                "SDK名",
                "插件名称",
                "产品/服务",
                "产品或服务",
                "产品名称",
                "应用功能",
                "功能模块",
                "Service",
                "Services",
                "Feature",
                "SDK name",
                "Product",
                "Products",
                "Relevant services",
                "Related services",
                "Service used",
                "Services used",
            ),
        ),
        Column(
            "recipient",
            gettext_lazy("recipient"),
            (
                "服务主体",
                "第三方名称",
                "第三方主体",
                "第三方主体名称",
                "第三方",
                "第三方公司名称",
                "第三方公司",
                "第三方机构名称",
                "第三方机构",
                "SDK运营方",
                "SDK运营方名称",
                "SDK提供方",
                "SDK提供方名称",
                "第三方SDK提供方的公司名称",
                "第三方SDK提供方",
                "SDK开发者",
                "SDK开发者名称",
                "SDK厂商",
                "SDK公司名称",
                "SDK主体",
                "所属机构",
                "所属公司",
                "运营方",
                "运营公司",
                "运营主体",
                "开发者",
                "提供方",
                "公司名称",
                "合作方",
                "合作方名称",
                "合作方主体",  # not 合作伙伴: tests/data/bad uses it as the unknown header
                "合作机构",
                "合作单位",
                "接收方",
                "接收方名称",
                "信息接收方",
                "个人信息接收方",
                "受托方",
                "受托方名称",
                "共享对象",
                "共享对象名称",
                "共享方",
                "Subprocessor",
                "Sub-processor",
                "Subprocessors",
                "Sub-processors",
                "Subprocessor name",
                "Name of subprocessor",
                "Name",
                "Entity",
                "Entity name",
                "Company",
                "Company name",
                "Recipient",
                "Recipient name",
                "Third party",
                "Third-party",
                "Third party name",
                "Vendor",
                "Vendor name",
                "Supplier",
                "Supplier name",
                "Service provider",
                "Provider",
                "Processor",
                "Organisation",
                "Organization",
                "Partner",
                "Legal entity",
                "第三方主体身份",
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
                "共享信息",
                "共享个人信息",
                "共享的个人信息",
                "共享个人信息类型",
                "共享的个人信息类型",
                "个人信息类型",
                "个人信息种类",
                "个人信息字段",
                "个人信息范围",
                "收集的个人信息",
                "收集个人信息",
                "收集个人信息类型",
                "收集的个人信息类型",
                "收集个人信息字段",
                "收集个人信息字段及目的",
                "收集的信息",
                "收集信息",
                "处理的个人信息",
                "处理的个人信息类型",
                "处理个人信息类型",
                "第三方收集的个人信息",
                "SDK收集的个人信息",
                "涉及个人信息",
                "涉及的个人信息",
                "个人信息",
                "数据类型",
                "信息类型",
                "信息内容",
                "数据项",
                "收集数据类型",
                "出境数据",
                "出境个人信息",
                "出境个人信息种类",
                "Data categories",
                "Personal data",
                "Data",
                "Categories of personal data",
                "Categories of data",
                "Personal data categories",
                "Types of personal data",
                "Type of personal data",
                "Data types",
                "Data type",
                "Data shared",
                "Data involved",
                "Customer data involved",
                "Data transferred",
                "Personal data involved",
                "Personal data processed",
                "Personal information",
                "Information collected",
                "Data collected",
                "involving personal information",
            ),
            parse=_verbatim,
        ),
        Column(
            "purpose",
            gettext_lazy("purpose"),
            (
                "处理个人信息目的",
                "使用目的",
                "目的",
                "共享目的",
                "个人信息共享目的",
                "处理目的",
                "收集目的",
                "合作目的",
                "使用目的及功能场景",
                "实现目的",
                "使用目的及场景",
                "SDK用途",
                "用途",
                "功能",
                "功能/服务",
                "功能描述",
                "服务内容",
                "服务描述",
                "提供服务",
                "合作内容",
                "合作场景",
                "用途说明",
                "Purpose",
                "Purposes",
                "Purpose of processing",
                "Processing purpose",
                "Processing purposes",
                "Purpose/Services",
                "Purpose of usage",
                "Description",
                "Description/Purpose",
                "Processing activities",
                "Processing activity",
                "Function",
                "Functions",
                "Nature of processing",
                # A sub-processor list's "Role" is what the sub-processor does for the controller.
                "Role",
                "Services provided",
                "Service provided",
                "Service description",
                "Activities",
                "Use",
                "Usage",
            ),
            parse=_one_line,
        ),
        Column(
            "actions",
            gettext_lazy("processing operations"),
            (
                "处理个人信息方式",
                "处理方式",
                "个人信息处理方式",
                "Processing method",
                "Processing operations",
                "Processing",
            ),
            parse=_one_line,
        ),
        Column(
            "usage_scenario",
            gettext_lazy("usage scenario"),
            (
                "使用场景",
                "场景",
                "功能场景",
                "实现功能/场景",
                "应用场景",
                "共享场景",
                "业务场景",
                "Usage scenario",
                "Scenario",
            ),
        ),
        Column(
            "sharing_method",
            gettext_lazy("sharing method"),
            (
                "共享方式",
                "收集方式",
                "传输方式",
                "提供方式",
                "共享个人信息方式",
                "接入方式",
                "Sharing method",
                "Collection method",
                "Transfer method",
            ),
            parse=lambda cell: parse_choice(
                cell, choices=SharingMethod.choices, synonyms=SHARING_METHOD_SYNONYMS
            ),
        ),
        Column(
            "feature_necessary",
            gettext_lazy("necessary for the feature"),
            ("是否必要", "是否必需", "必要性", "是否必须", "Necessary", "Required"),
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
                "使用的权限",
                "调用的权限",
                "涉及权限",
                "系统权限",
                "Permissions",
                "Device permissions",
                "Permission to use",
                "Permissions used",
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
                "第三方隐私政策",
                "SDK隐私政策链接",
                "SDK隐私政策",
                "第三方SDK隐私政策链接",
                "第三方SDK隐私政策",
                "隐私权政策链接",
                "隐私权政策",
                "SDK隐私说明链接",
                "隐私说明链接",
                "隐私说明",
                "第三方隐私政策链接，仅供参考",
                "第三方隐私政策或官网链接",
                "隐私政策或官网",
                "隐私政策或官网链接",
                "第三方个人信息处理规则",
                "个人信息处理规则",
                "隐私政策/官网链接",
                "Privacy policy",
                "Privacy policy URL",
                "Privacy policy link",
                "Privacy notice",
                "Privacy",
            ),
            parse=parse_url,
        ),
        Column(
            "website",
            gettext_lazy("website"),
            (
                "官网链接",
                "官网",
                "官方网站",
                "网址",
                "第三方官网链接",
                "第三方SDK官网链接",
                "SDK官网链接",
                "SDK官网",
                "Website",
                "Web site",
                "Link",
                "URL",
                "Homepage",
                "Website & Contact Details",
                "Contact details",
                "Website and contact details",
            ),
            parse=parse_url,
        ),
        Column(
            "sdk_package",
            gettext_lazy("SDK package"),
            ("包名信息", "包名", "SDK包名", "package name information", "Package name", "Package"),
        ),
        Column(
            "country",
            gettext_lazy("country or region"),
            (
                "所在国家/地区",
                "国家/地区",
                "所在地",
                "注册地",
                "公司所在地",
                "所在国家",
                "注册国家",
                "Country",
                "Country/Region",
                "Entity location",
                "HQ location",
                "HQ",
                "Headquarters",
                "Headquarters location",
                "Corporate location",
                "Company location",
                "Entity country",
                "Country of incorporation",
                "Registered office",
            ),
            parse=_single_country,
        ),
        Column(
            "processing_locations",
            gettext_lazy("locations of processing"),
            (
                "处理地点",
                "处理地区",
                "处理地",
                "数据存储地",
                "数据存储地点",
                "存储地点",
                "存储地区",
                "数据处理地点",
                "服务器所在地",
                "境外接收方所在国家或地区",
                "接收方所在国/地区",
                "接收方所在国家/地区",
                "境外接收方所在国/地区",
                "Location",
                "Locations",
                "Location of subprocessors",
                "Location of processing",
                "Processing location",
                "Processing locations",
                "Location(s)",
                "Geographic location",
                "Geographical location",
                "Region",
                "Regions",
                "Data location",
                "Data center location",
                "Data centre location",
                "Hosting location",
                "Server location",
                "Where processed",
            ),
            parse=_locations,
        ),
        Column(
            "recipient_role",
            gettext_lazy("kind of recipient"),
            (
                "接收方类型",
                "接收方类别",
                "第三方类型",
                "第三方类别",
                "合作方类型",
                "所涉第三方",
                "合作方类别",
                "共享对象类型",
                "共享对象类别",
                "接收方性质",
                "Recipient type",
                "Type of recipient",
                "Category of recipient",
                "Recipient category",
                "Kind of recipient",
            ),
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
            "legal_basis",
            gettext_lazy("legal basis"),
            ("法律依据", "法律基础", "合法性基础", "处理依据", "Legal basis", "Lawful basis"),
            parse=lambda cell: parse_choice(cell, choices=LegalBasis.choices, synonyms=LEGAL_BASIS_SYNONYMS),
        ),
        Column(
            "relationship",
            gettext_lazy("relationship"),
            ("关系类型", "关系", "处理关系", "Relationship"),
            parse=lambda cell: parse_choice(
                cell, choices=Relationship.choices, synonyms=RELATIONSHIP_SYNONYMS
            ),
        ),
        Column(
            "notes",
            gettext_lazy("notes"),
            # 备注 is left out on purpose: the tests use it as the example of a header a person must map.
            ("Notes", "Note", "Comments", "Remarks"),
            parse=_verbatim,
        ),
        Column(
            IGNORE, gettext_lazy("ignored"), ("序号", "编号", "No.", "No", "#", "Nr.", "S/N", "SN", "Index")
        ),
    )
)


def propose_field(cells: Sequence[str], taken: set[str], taxonomy: Any) -> str | None:
    """The field a column's content suggests for its unknown header, or None when it says nothing clear.

    A column of web addresses is a link (the privacy policy first), one of places is where processing
    happens (then the company's country), one of legal names is the recipient, and one of lists whose
    items the taxonomy knows is the personal information.
    """
    cells = [cell for cell in cells if cell.strip()]
    if not cells:
        return None

    def share(test: Callable[[str], bool]) -> float:
        return sum(1 for cell in cells if test(cell)) / len(cells)

    def free(*fields: str) -> str | None:
        return next((name for name in fields if name not in taken), None)

    if share(lambda cell: bool(_ADDRESS.search(cell))) >= PROPOSAL_SHARE:
        return free("privacy_policy_url", "website")
    if share(_is_places) >= PROPOSAL_SHARE:
        return free("processing_locations", "country")
    if share(lambda cell: bool(_COMPANY_NAME.search(cell))) >= PROPOSAL_SHARE:
        return free("recipient")
    items = [item for cell in cells for item in split_list(cell).items]
    if len(items) >= len(cells):
        mapped = sum(1 for mapping in taxonomy.map_items(items) if mapping.category_codes)
        if mapped / len(items) >= PROPOSAL_SHARE:
            return free("data_items")
    return None


def _is_places(cell: str) -> bool:
    places = parse_locations(cell)
    return bool(places.countries or places.regions or places.vague) and not places.unknown
