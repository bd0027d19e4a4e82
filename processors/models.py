"""The register: who receives which personal information from whom, why, how and on what footing.

One row of a published third-party table (第三方信息共享清单) is an ``Operation``: a controller's
``Service`` sends ``DataItem``s (free text, each mapped onto the ``DataCategory`` taxonomy) to a
``Processor`` for ``Purpose``s by ``ProcessingAction``s. Invariants are database constraints so that
the admin, the importer and the API cannot disagree.

Why one module: Django keeps an app's models in ``models.py``, the migrations and permission codenames
name them there, and the models point at each other (operations, items, findings, versions, letters)
so that a split would only move the foreign keys into string references across files.
"""

import contextlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from simple_history.models import HistoricalRecords

from processors.text import normalize_key
from processors.validators import (
    CATEGORY_CODE_PATTERN,
    SIMPLE_CODE_PATTERN,
    validate_category_code,
    validate_single_line,
    validate_uscc,
)

simple_code_validator = RegexValidator(
    SIMPLE_CODE_PATTERN, _("Use lower-case letters, digits and underscores, starting with a letter.")
)


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Optimistic concurrency: the update services bump it in the same transaction as the change (and
    # refuse when the caller's expected version is stale); the API sends it as the ETag, forms carry it.
    # A counter rather than updated_at: two saves within a clock tick, or clocks of two servers, cannot
    # make two different states look the same.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    class Meta:
        abstract = True


class ReadingOrderSource(models.Model):
    """A row whose fields are copied into operations' reading order (``Operation.order_*``).

    It remembers the values it was loaded with, so a save that changes none of them costs no query;
    ``reading_order_follow`` (post_save) rewrites the operations that carry a changed value.
    """

    reading_order_fields: tuple[str, ...] = ()

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Any:
        instance = super().from_db(db, field_names, values)
        instance.reading_order_loaded = instance.reading_order_values()
        return instance

    def reading_order_values(self) -> tuple:
        # __dict__, not getattr: a deferred field must not be loaded just to be remembered.
        return tuple(self.__dict__.get(name) for name in self.reading_order_fields)

    def reading_order_update(self) -> None:
        raise NotImplementedError


class ReviewedModel(models.Model):
    """Who answers for a row and when it was last checked (PIPL Art. 54 expects regular audits).

    The review interval is REGISTER_REVIEW_INTERVAL_DAYS; review_due is set when a row is marked
    reviewed and can be changed by hand. Names are copied so the record outlives its users.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("last reviewed at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last reviewed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_by_name = models.CharField(_("last reviewed by (name)"), max_length=150, blank=True)
    review_due = models.DateField(_("next review"), null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class BilingualNameMixin:
    """Shows the name in the active language, falling back to the other one."""

    def display_name(self) -> str:
        from django.utils.translation import get_language

        if (get_language() or "").startswith("en"):
            return self.name_en or self.name_zh
        return self.name_zh or self.name_en


class Channel(models.TextChoices):
    """Through which door a change came in; recorded on every history entry and import."""

    ADMIN = "admin", _("admin")
    BROWSER = "browser", _("browser")
    API = "api", _("API")
    IMPORT = "import", _("import")
    COMMAND = "command", _("management command")
    SYSTEM = "system", _("system")


class HistoryContext(models.Model):
    """Extra columns of every history table: the channel and, for imports, which import."""

    history_channel = models.CharField(_("channel"), max_length=20, choices=Channel, blank=True)
    history_import = models.ForeignKey(
        "processors.ImportRecord",
        verbose_name=_("import"),
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    # Who, by name, copied at write time: the user row may be deleted later; the evidence must not be.
    history_username = models.CharField(_("user name"), max_length=150, blank=True)

    class Meta:
        abstract = True


def register_history(**options) -> HistoricalRecords:
    """History for a register model: who, when, which channel and import, before/after values."""
    return HistoricalRecords(bases=[HistoryContext], cascade_delete_history=False, **options)


# --- Taxonomy -------------------------------------------------------------------------------------


class DataCategory(BilingualNameMixin, models.Model):
    """A node of the bilingual data-category tree; the dotted code is also its path."""

    code = models.CharField(
        _("code"),
        max_length=100,
        unique=True,
        validators=[validate_category_code, validate_single_line],
        help_text=_("Stable dotted code, e.g. basic.phone_number; a child extends its parent's code."),
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    name_zh = models.CharField(
        _("Chinese name"), max_length=100, unique=True, validators=[validate_single_line]
    )
    name_en = models.CharField(
        _("English name"), max_length=100, unique=True, validators=[validate_single_line]
    )
    description_zh = models.TextField(_("Chinese description"), blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_("Sensitive personal information under GB/T 35273-2020 Appendix B and PIPL Art. 28."),
    )
    sensitive_gbt45574 = models.BooleanField(
        _("sensitive under GB/T 45574-2025"),
        null=True,
        blank=True,
        help_text=_("Only where GB/T 45574-2025 differs from GB/T 35273-2020; empty means the same."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    history = register_history()

    class Meta:
        verbose_name = _("data category")
        verbose_name_plural = _("data categories")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=CATEGORY_CODE_PATTERN), name="category_code_is_dotted"
            ),
            # A root has a one-segment code and no parent; every other node has both.
            models.CheckConstraint(
                condition=(Q(parent__isnull=True) & ~Q(code__contains="."))
                | (Q(parent__isnull=False) & Q(code__contains=".")),
                name="category_parent_matches_code_depth",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.display_name()}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.parent_id is None:
            if "." in (self.code or ""):
                raise ValidationError({"parent": _("A dotted code needs the parent it extends.")})
            return
        if self.parent_id == self.pk and self.pk is not None:
            raise ValidationError({"parent": _("A category cannot be its own parent.")})
        if (
            not (self.code or "").startswith(self.parent.code + ".")
            or "." in self.code[len(self.parent.code) + 1 :]
        ):
            raise ValidationError(
                {
                    "code": _("The code must be the parent's code plus one segment: %(prefix)s.…")
                    % {"prefix": self.parent.code}
                }
            )

    @property
    def depth(self) -> int:
        return self.code.count(".")

    @property
    def effective_sensitive_gbt45574(self) -> bool:
        return self.sensitive if self.sensitive_gbt45574 is None else self.sensitive_gbt45574


class AliasBase(models.Model):
    """A free-text name that real tables use; ``key`` is its width/case/space-folded form."""

    text = models.CharField(_("alias"), max_length=200, validators=[validate_single_line])
    key = models.CharField(_("match key"), max_length=200, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["text"]

    def __str__(self) -> str:
        return self.text

    def clean(self) -> None:
        self.key = normalize_key(self.text)


class CategoryAlias(AliasBase):
    category = models.ForeignKey(
        DataCategory, verbose_name=_("data category"), on_delete=models.CASCADE, related_name="aliases"
    )

    history = register_history()

    class Meta(AliasBase.Meta):
        verbose_name = _("category alias")
        verbose_name_plural = _("category aliases")


class Purpose(BilingualNameMixin, models.Model):
    code = models.CharField(
        _("code"), max_length=60, unique=True, validators=[simple_code_validator, validate_single_line]
    )
    name_zh = models.CharField(
        _("Chinese name"), max_length=100, unique=True, validators=[validate_single_line]
    )
    name_en = models.CharField(
        _("English name"), max_length=100, unique=True, validators=[validate_single_line]
    )
    description_zh = models.TextField(_("Chinese description"), blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    history = register_history()

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.display_name()


class PurposeAlias(AliasBase):
    purpose = models.ForeignKey(
        Purpose, verbose_name=_("purpose"), on_delete=models.CASCADE, related_name="aliases"
    )

    history = register_history()

    class Meta(AliasBase.Meta):
        verbose_name = _("purpose alias")
        verbose_name_plural = _("purpose aliases")


class ProcessingAction(BilingualNameMixin, models.Model):
    """收集、存储、使用… PIPL Art. 4 lists eight; the extended ones come from practice."""

    code = models.CharField(
        _("code"), max_length=40, unique=True, validators=[simple_code_validator, validate_single_line]
    )
    name_zh = models.CharField(
        _("Chinese name"), max_length=40, unique=True, validators=[validate_single_line]
    )
    name_en = models.CharField(
        _("English name"), max_length=60, unique=True, validators=[validate_single_line]
    )
    pipl_article_4 = models.BooleanField(_("listed in PIPL Art. 4"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    history = register_history()

    class Meta:
        verbose_name = _("processing action")
        verbose_name_plural = _("processing actions")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.display_name()


class TaxonomyRelease(models.Model):
    """Which version of the built-in taxonomy has been applied, so upgrades add only what is new."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    applied_at = models.DateTimeField(_("applied at"), auto_now_add=True)

    class Meta:
        verbose_name = _("taxonomy release")
        verbose_name_plural = _("taxonomy releases")
        ordering = ["-version"]

    def __str__(self) -> str:
        return str(self.version)


# --- Parties --------------------------------------------------------------------------------------


class PublicVersions(models.TextChoices):
    """How much of a controller's version history a public disclosure page shows."""

    NONE = "none", _("none (only the table in effect)")
    LATEST = "latest", _("the latest version only")
    ALL = "all", _("every version and diff")


class Controller(BilingualNameMixin, ReadingOrderSource, TimestampedModel):
    """The company or app that publishes a register (个人信息处理者); one installation keeps several."""

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name_zh = models.CharField(
        _("Chinese name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    name_en = models.CharField(
        _("English name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    country = CountryField(_("country/region"), default="CN")
    website = models.URLField(_("website"), blank=True)
    privacy_policy_url = models.URLField(_("privacy policy URL"), blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(
        _("contact phone"), max_length=60, blank=True, validators=[validate_single_line]
    )
    address = models.CharField(_("address"), max_length=300, blank=True, validators=[validate_single_line])
    disclosure_public = models.BooleanField(
        _("disclosure page is public"),
        default=False,
        help_text=_("Anyone may read this controller's published third-party table."),
    )
    public_versions = models.CharField(
        _("versions shown to the public"),
        max_length=10,
        choices=PublicVersions,
        default=PublicVersions.LATEST,
        help_text=_("Which published versions and diffs visitors who are not members may see."),
    )
    extra_sensitive_categories = models.ManyToManyField(
        DataCategory,
        verbose_name=_("also treated as sensitive"),
        blank=True,
        related_name="+",
        help_text=_("Categories this organisation marks sensitive beyond the standard (e.g. phone number)."),
    )

    history = register_history()

    class Meta:
        verbose_name = _("controller")
        verbose_name_plural = _("controllers")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=~Q(name_zh="") | ~Q(name_en=""), name="controller_has_a_name"),
        ]

    def __str__(self) -> str:
        return self.display_name()

    reading_order_fields = ("code",)

    def reading_order_update(self) -> None:
        Operation.objects.filter(service__controller=self).exclude(order_controller=self.code).update(
            order_controller=self.code
        )


class ControllerRole(models.IntegerChoices):
    """What a member may do within one controller; each role includes the ones below it."""

    VIEWER = 10, _("viewer")
    EDITOR = 20, _("editor")
    PUBLISHER = 30, _("publisher")
    ADMIN = 40, _("admin")


class ControllerMembership(models.Model):
    """A user (or every user of a group) is a member of a controller with a role.

    Model permissions say what kind of thing a user may do; membership says in which controllers.
    Users with neither a membership nor superuser status see no controller at all (fail closed).
    """

    controller = models.ForeignKey(
        Controller, verbose_name=_("controller"), on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="controller_memberships",
    )
    group = models.ForeignKey(
        "auth.Group",
        verbose_name=_("group"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="controller_memberships",
    )
    role = models.PositiveSmallIntegerField(_("role"), choices=ControllerRole, default=ControllerRole.VIEWER)

    class Meta:
        verbose_name = _("controller membership")
        verbose_name_plural = _("controller memberships")
        ordering = ["controller__code", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="membership_names_a_user_or_a_group",
            ),
            models.UniqueConstraint(fields=["controller", "user"], name="membership_unique_user"),
            models.UniqueConstraint(fields=["controller", "group"], name="membership_unique_group"),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} @ {self.controller.code}: {self.get_role_display()}"


class Processor(BilingualNameMixin, ReadingOrderSource, ReviewedModel, TimestampedModel):
    """A recipient (受托方 / 第三方 / sub-processor), or a group of recipients named together."""

    class Kind(models.TextChoices):
        ORGANISATION = "organisation", _("organisation")
        GROUP = "group", _("group of organisations")
        # A product or trade name (支付宝, 微信支付) published in place of the company behind it.
        BRAND = "brand", _("brand")

    name_zh = models.CharField(
        _("Chinese name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    name_en = models.CharField(
        _("English name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    name_key = models.CharField(_("match key"), max_length=200, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind, default=Kind.ORGANISATION)
    member_of = models.ForeignKey(
        "self",
        verbose_name=_("member of group"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        limit_choices_to={"kind": "group"},
    )
    contact_phone = models.CharField(
        _("contact phone"), max_length=60, blank=True, validators=[validate_single_line]
    )
    contact_email = models.EmailField(_("contact email"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True, validators=[validate_single_line])
    website = models.URLField(_("website"), blank=True)
    privacy_policy_url = models.URLField(_("privacy policy URL"), blank=True)
    country = CountryField(_("country/region of establishment"), blank=True)
    uscc = models.CharField(
        _("unified social credit code"), max_length=18, blank=True, validators=[validate_uscc]
    )
    icp_filing = models.CharField(
        _("ICP filing number"), max_length=80, blank=True, validators=[validate_single_line]
    )
    public_security_filing = models.CharField(
        _("public security filing number"), max_length=80, blank=True, validators=[validate_single_line]
    )
    notes = models.TextField(_("notes"), blank=True)

    history = register_history()

    class Meta:
        verbose_name = _("processor")
        verbose_name_plural = _("processors")
        ordering = ["name_key"]
        # As Operation's: the recipients changed since a publication, a short range.
        indexes = [models.Index(fields=["updated_at"], name="processor_updated_at")]
        constraints = [
            models.CheckConstraint(condition=~Q(name_zh="") | ~Q(name_en=""), name="processor_has_a_name"),
            models.UniqueConstraint(fields=["uscc"], condition=~Q(uscc=""), name="processor_uscc_unique"),
            models.CheckConstraint(condition=~Q(member_of=F("id")), name="processor_not_member_of_itself"),
        ]

    def __str__(self) -> str:
        return self.display_name()

    reading_order_fields = ("name_key",)

    def reading_order_update(self) -> None:
        Operation.objects.filter(processor=self).exclude(order_processor=self.name_key).update(
            order_processor=self.name_key
        )

    def clean(self) -> None:
        self.uscc = (self.uscc or "").strip().upper()
        self.name_key = normalize_key(self.name_zh or self.name_en)

    @property
    def primary_name(self) -> str:
        return self.name_zh or self.name_en


class ProcessorAlias(AliasBase):
    """Another name a processor is known by (a brand, a former name, a short name such as 钉钉)."""

    processor = models.ForeignKey(
        Processor, verbose_name=_("processor"), on_delete=models.CASCADE, related_name="aliases"
    )

    history = register_history()

    class Meta(AliasBase.Meta):
        verbose_name = _("processor alias")
        verbose_name_plural = _("processor aliases")


# --- Services and operations ----------------------------------------------------------------------


class Service(ReadingOrderSource, TimestampedModel):
    """A feature of the controller for which data flows (服务/功能名称), optionally an embedded SDK."""

    controller = models.ForeignKey(
        Controller, verbose_name=_("controller"), on_delete=models.PROTECT, related_name="services"
    )
    name = models.CharField(_("name"), max_length=200, validators=[validate_single_line])
    name_en = models.CharField(
        _("English name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    description = models.TextField(_("description"), blank=True)
    sdk_name = models.CharField(_("SDK name"), max_length=200, blank=True, validators=[validate_single_line])
    sdk_package = models.CharField(
        _("SDK package name"), max_length=200, blank=True, validators=[validate_single_line]
    )
    sdk_version = models.CharField(
        _("SDK version"), max_length=60, blank=True, validators=[validate_single_line]
    )
    sdk_privacy_policy_url = models.URLField(_("SDK privacy policy URL"), blank=True)
    device_permissions = models.TextField(
        _("device permissions"), blank=True, help_text=_("One permission per line, as the SDK requests it.")
    )

    history = register_history()

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["controller__code", "name"]
        constraints = [
            models.UniqueConstraint(fields=["controller", "name"], name="service_name_unique_per_controller"),
        ]

    def __str__(self) -> str:
        from django.utils.translation import get_language

        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name

    reading_order_fields = ("name", "controller_id")

    def reading_order_update(self) -> None:
        code = Controller.objects.filter(pk=self.controller_id).values_list("code", flat=True).first() or ""
        Operation.objects.filter(service=self).exclude(order_service=self.name, order_controller=code).update(
            order_service=self.name, order_controller=code
        )

    @property
    def permission_list(self) -> list[str]:
        return [line.strip() for line in self.device_permissions.splitlines() if line.strip()]


class Relationship(models.TextChoices):
    """How the recipient stands to the controller (regulation.md 6.1)."""

    ENTRUSTED = "entrusted", _("entrusted processing (PIPL Art. 21)")
    SUB_ENTRUSTED = "sub_entrusted", _("sub-entrusted processing (PIPL Art. 21)")
    JOINT = "joint", _("joint processing (PIPL Art. 20)")
    PROVISION = "provision", _("provision to another handler (PIPL Art. 23)")
    EMBEDDED_SDK = "embedded_sdk", _("embedded third party / SDK")
    MERGER_TRANSFER = "merger_transfer", _("transfer on merger or division (PIPL Art. 22)")
    PUBLIC_DISCLOSURE = "public_disclosure", _("public disclosure (PIPL Art. 25)")


class SharingMethod(models.TextChoices):
    SDK_COLLECTION = "sdk_collection", _("SDK collects on the device")
    SERVER_TRANSFER = "server_transfer", _("server-to-server transmission")
    FILE_TRANSFER = "file_transfer", _("file or batch transfer")
    RECIPIENT_ACCESS = "recipient_access", _("recipient accesses our systems")
    MANUAL = "manual", _("manual provision")
    OTHER = "other", _("other")


class LegalBasis(models.TextChoices):
    """PIPL Art. 13."""

    CONSENT = "consent", _("consent (Art. 13(1))")
    CONTRACT = "contract", _("contract with the individual (Art. 13(2))")
    HR = "hr", _("human-resources management (Art. 13(2))")
    LEGAL_DUTY = "legal_duty", _("statutory duty (Art. 13(3))")
    EMERGENCY = "emergency", _("public-health emergency or vital interests (Art. 13(4))")
    NEWS = "news", _("news reporting in the public interest (Art. 13(5))")
    PUBLISHED = "published", _("information already lawfully public (Art. 13(6))")
    OTHER_LAW = "other_law", _("other laws and regulations (Art. 13(7))")


class ConsentType(models.TextChoices):
    ORDINARY = "ordinary", _("ordinary consent")
    SEPARATE = "separate", _("separate consent (单独同意)")
    WRITTEN = "written", _("written consent")
    GUARDIAN = "guardian", _("guardian consent (under 14)")
    NOT_APPLICABLE = "not_applicable", _("not based on consent")


class TransferMechanism(models.TextChoices):
    """PIPL Art. 38 and the exemptions of CAC Order 16."""

    SECURITY_ASSESSMENT = "security_assessment", _("CAC security assessment")
    STANDARD_CONTRACT = "standard_contract", _("standard contract filed with the CAC")
    CERTIFICATION = "certification", _("personal-information protection certification")
    EXEMPT_CONTRACT = (
        "exempt_contract",
        _("exempt: needed for a contract with the individual (Order 16 Art. 5(1))"),
    )
    EXEMPT_HR = "exempt_hr", _("exempt: cross-border HR management (Order 16 Art. 5(2))")
    EXEMPT_EMERGENCY = "exempt_emergency", _("exempt: emergency (Order 16 Art. 5(3))")
    EXEMPT_VOLUME = "exempt_volume", _("exempt: under 100,000 people, no sensitive data (Order 16 Art. 5(4))")
    EXEMPT_TRANSIT = "exempt_transit", _("exempt: no PI or transit only (Order 16 Arts. 3-4)")
    FREE_TRADE_ZONE = "free_trade_zone", _("free-trade-zone negative list (Order 16 Art. 6)")


class OperationStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    RETIRED = "retired", _("retired")


class Operation(ReadingOrderSource, ReviewedModel, TimestampedModel):
    """One row of a disclosure table: a service sends data items to a processor."""

    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="operations"
    )
    processor = models.ForeignKey(
        Processor, verbose_name=_("processor"), on_delete=models.PROTECT, related_name="operations"
    )
    recipient_qualifier = models.CharField(
        _("recipient qualifier"),
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text=_("Words the table adds to the recipient's name, e.g. 及其合作机构 or 微众链."),
    )
    data_items_text = models.TextField(_("data items as published"), blank=True)
    purposes = models.ManyToManyField(
        Purpose, verbose_name=_("purposes"), blank=True, related_name="operations"
    )
    purpose_text = models.CharField(
        _("purpose as published"), max_length=500, blank=True, validators=[validate_single_line]
    )
    actions = models.ManyToManyField(
        ProcessingAction, verbose_name=_("processing actions"), blank=True, related_name="operations"
    )
    actions_text = models.CharField(
        _("processing actions as published"), max_length=300, blank=True, validators=[validate_single_line]
    )
    actions_open_ended = models.BooleanField(
        _("action list ends with 等"), default=False, help_text=_("The published list is open-ended (…等).")
    )
    relationship = models.CharField(_("relationship"), max_length=30, choices=Relationship, blank=True)
    sharing_method = models.CharField(_("sharing method"), max_length=30, choices=SharingMethod, blank=True)
    usage_scenario = models.TextField(_("usage scenario"), blank=True)
    feature_necessary = models.BooleanField(_("necessary for the feature"), null=True, blank=True)
    legal_basis = models.CharField(_("legal basis"), max_length=30, choices=LegalBasis, blank=True)
    consent_type = models.CharField(_("consent type"), max_length=30, choices=ConsentType, blank=True)
    retention_at_recipient = models.CharField(
        _("retention at the recipient"), max_length=300, blank=True, validators=[validate_single_line]
    )
    recipient_role = models.CharField(
        _("kind of recipient"),
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text=_("What the recipient is to this service as the table says, e.g. 物流服务商 or 支付机构."),
    )
    processing_locations = models.CharField(
        _("locations of processing as published"),
        max_length=500,
        blank=True,
        validators=[validate_single_line],
        help_text=_("Where the table says the data is processed, as written (Global, EU (Amsterdam)…)."),
    )
    processing_countries = CountryField(
        _("countries of processing"),
        multiple=True,
        blank=True,
        help_text=_("The countries of the published locations of processing; a region is its member states."),
    )
    cross_border = models.BooleanField(_("cross-border transfer"), default=False)
    destination_countries = CountryField(_("destination countries/regions"), multiple=True, blank=True)
    transfer_mechanism = models.CharField(
        _("cross-border mechanism"), max_length=30, choices=TransferMechanism, blank=True
    )
    annual_subjects = models.PositiveIntegerField(
        _("people per year"),
        null=True,
        blank=True,
        help_text=_("Individuals whose data is sent in a calendar year."),
    )
    annual_sensitive_subjects = models.PositiveIntegerField(
        _("people per year (sensitive data)"), null=True, blank=True
    )
    contract_reference = models.CharField(
        _("DPA or contract reference"), max_length=200, blank=True, validators=[validate_single_line]
    )
    pia_reference = models.CharField(
        _("PIA reference"), max_length=200, blank=True, validators=[validate_single_line]
    )
    pia_date = models.DateField(_("PIA date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=OperationStatus, default=OperationStatus.ACTIVE
    )
    effective_from = models.DateField(_("effective from"), null=True, blank=True)
    effective_to = models.DateField(_("effective to"), null=True, blank=True)
    source_text = models.TextField(
        _("source row"), blank=True, help_text=_("The row exactly as it was imported, so nothing is lost.")
    )
    notes = models.TextField(_("notes"), blank=True)
    # The register's reading order (controller, service, recipient) copied onto the row, so that a page
    # of a list is read off one index instead of sorting every operation joined to its service and
    # recipient (issue 13). Derived, so kept out of the history: filled before every save
    # (``operation_fill_reading_order``), by the bulk writers (``fill_reading_order``), and rewritten
    # when a service, recipient or controller changes its name or code (``reading_order_follow``).
    order_controller = models.CharField(max_length=60, blank=True, default="", editable=False)
    order_service = models.CharField(max_length=200, blank=True, default="", editable=False)
    order_processor = models.CharField(max_length=200, blank=True, default="", editable=False)

    history = register_history(
        m2m_fields=["purposes", "actions"],
        excluded_fields=["order_controller", "order_service", "order_processor"],
    )

    class Meta:
        verbose_name = _("processing operation")
        verbose_name_plural = _("processing operations")
        # The same order as (service__controller__code, service__name, processor__name_key, id).
        ordering = ["order_controller", "order_service", "order_processor", "id"]
        indexes = [
            models.Index(
                fields=["order_controller", "order_service", "order_processor", "id"],
                name="operation_reading_order",
            ),
            # "Changed since the last publication?" (disclosure.page.unpublished_changes) reads a
            # controller's operations updated after a moment: a short range of this index per service,
            # not every operation of the controller.
            models.Index(fields=["service", "updated_at"], name="operation_service_updated_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_from__isnull=True)
                | Q(effective_to__isnull=True)
                | Q(effective_to__gte=F("effective_from")),
                name="operation_dates_in_order",
            ),
            models.CheckConstraint(
                condition=Q(cross_border=True) | (Q(transfer_mechanism="") & Q(destination_countries="")),
                name="operation_mechanism_only_when_cross_border",
            ),
            models.UniqueConstraint(
                fields=["service", "processor", "relationship", "effective_from"],
                name="operation_unique_per_period",
            ),
            # NULLs are distinct in a unique index, so undated rows need their own constraint.
            models.UniqueConstraint(
                fields=["service", "processor", "relationship"],
                condition=Q(effective_from__isnull=True),
                name="operation_unique_undated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} → {self.processor}"

    reading_order_fields = ("service_id", "processor_id")

    def fill_reading_order(self) -> None:
        """Copy the controller's code, the service's name and the recipient's match key onto the row,
        from the related rows already loaded, else in one query each."""
        if Operation.service.is_cached(self):
            service = self.service
            self.order_service = service.name
            if Service.controller.is_cached(service):
                self.order_controller = service.controller.code
            else:
                self.order_controller = (
                    Controller.objects.filter(pk=service.controller_id).values_list("code", flat=True).first()
                    or ""
                )
        else:
            name, code = (
                Service.objects.filter(pk=self.service_id).values_list("name", "controller__code").first()
            )
            self.order_service, self.order_controller = name, code
        if Operation.processor.is_cached(self):
            self.order_processor = self.processor.name_key
        else:
            self.order_processor = (
                Processor.objects.filter(pk=self.processor_id).values_list("name_key", flat=True).first()
                or ""
            )

    def reading_order_update(self) -> None:
        """Nothing follows an operation; its own fields are filled before it is saved."""


class DataItem(models.Model):
    """One published data item of an operation and the category it maps to.

    A composite item (钉钉审批流，包含姓名手机) yields one row per category with the same position and
    text; an item the taxonomy cannot map is kept verbatim with no category: "unmapped — needs review".
    """

    class Match(models.TextChoices):
        ALIAS = "alias", _("alias")
        OCR = "ocr", _("recognised document")
        COMPOSITE = "composite", _("part of a composite item")
        # The item's words contain a known item (持卡人身份证号码, 崩溃日志上报): a guess a person confirms.
        INFERRED = "inferred", _("inferred — needs review")
        MANUAL = "manual", _("set by hand")

    # No index of its own: the reading-order index below (and the unique constraints) lead with it.
    operation = models.ForeignKey(
        Operation,
        verbose_name=_("processing operation"),
        on_delete=models.CASCADE,
        related_name="data_items",
        db_index=False,
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    text = models.CharField(_("item as published"), max_length=500, validators=[validate_single_line])
    category = models.ForeignKey(
        DataCategory,
        verbose_name=_("data category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_items",
    )
    match = models.CharField(_("matched by"), max_length=20, choices=Match, blank=True)

    history = register_history()

    class Meta:
        verbose_name = _("data item")
        verbose_name_plural = _("data items")
        ordering = ["operation_id", "position", "id"]
        indexes = [
            models.Index(fields=["category", "operation"], name="dataitem_category_operation"),
            # The reading order: the admin's list of every item reads its first page off it instead of
            # sorting 550,000 items (SQLite, 100,000 operations: 300 → 3 ms).
            models.Index(fields=["operation", "position", "id"], name="dataitem_reading_order"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["operation", "position", "category"], name="dataitem_unique_category_per_item"
            ),
            models.UniqueConstraint(
                fields=["operation", "position"],
                condition=Q(category__isnull=True),
                name="dataitem_one_unmapped_row_per_item",
            ),
            models.CheckConstraint(
                condition=(Q(category__isnull=True) & Q(match=""))
                | (Q(category__isnull=False) & ~Q(match="")),
                name="dataitem_match_iff_category",
            ),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def needs_review(self) -> bool:
        return self.category_id is None


# --- Imports and published versions ---------------------------------------------------------------


class ImportRecord(models.Model):
    """One import (or preview) of a spreadsheet: who, when, which file, what it did."""

    class Result(models.TextChoices):
        PREVIEWED = "previewed", _("previewed (dry run)")
        IMPORTED = "imported", _("imported")
        FAILED = "failed", _("failed")
        # A background job's record exists before its import runs (processors/jobs.py).
        QUEUED = "queued", _("waiting for a worker")
        RUNNING = "running", _("running")

    controller = models.ForeignKey(
        Controller,
        verbose_name=_("controller"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="imports",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(_("user name"), max_length=150, blank=True)  # kept if the user is deleted
    channel = models.CharField(_("channel"), max_length=20, choices=Channel, default=Channel.COMMAND)
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveBigIntegerField(_("size in bytes"), default=0)
    shape = models.CharField(_("shape"), max_length=30, blank=True)
    dry_run = models.BooleanField(_("dry run"), default=False)
    result = models.CharField(_("result"), max_length=20, choices=Result)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    problems = models.JSONField(_("problems"), default=list, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True, db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    # A background job's: its task id, the rows its preview counted, and the rows written when it ended
    # (while it runs, its progress is kept beside its upload: processors/jobs.py says why).
    job_id = models.CharField(_("job id"), max_length=64, blank=True)
    rows_total = models.PositiveIntegerField(_("rows to import"), null=True, blank=True)
    rows_done = models.PositiveIntegerField(_("rows imported"), default=0)

    class Meta:
        verbose_name = _("import record")
        verbose_name_plural = _("import records")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="import_sha256_is_hex"),
            models.CheckConstraint(
                condition=~Q(result="previewed") | Q(dry_run=True), name="import_preview_is_a_dry_run"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_result_display()})"


class PublishedVersion(models.Model):
    """A frozen, immutable snapshot of a controller's disclosure table (版本更新日期 / 版本生效日期)."""

    controller = models.ForeignKey(
        Controller, verbose_name=_("controller"), on_delete=models.PROTECT, related_name="versions"
    )
    label = models.CharField(_("version label"), max_length=60, validators=[validate_single_line])
    updated_on = models.DateField(_("version update date"))
    effective_on = models.DateField(_("version effective date"))
    notes = models.TextField(_("notes"), blank=True)
    snapshot = models.JSONField(_("snapshot"), editable=False)
    snapshot_sha256 = models.CharField(_("snapshot SHA-256"), max_length=64, editable=False)
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("published by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    published_by_name = models.CharField(_("published by (name)"), max_length=150, blank=True)
    # Publishing over blocking problems needs a written reason; the problems overridden are kept with it.
    override_reason = models.TextField(_("reason for publishing despite problems"), blank=True)
    overridden_problems = models.JSONField(_("problems overridden"), default=list, blank=True, editable=False)
    # Withdrawal hides a version from the public without changing its content (which stays immutable).
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True, editable=False)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("withdrawn by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    withdrawn_by_name = models.CharField(_("withdrawn by (name)"), max_length=150, blank=True, editable=False)
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True, editable=False)
    # The public page of an immutable version, rendered once per language and served as stored.
    rendered_pages = models.JSONField(_("rendered pages"), default=dict, blank=True, editable=False)
    # How many rows the snapshot holds, counted once at publication, so lists never read the snapshot.
    row_count = models.PositiveIntegerField(_("rows"), default=0, editable=False)
    # Diffs against other versions, computed once (both sides are immutable) and kept by the other
    # version's id: {"<id>": {...VersionDiff.to_dict()...}}; the one against the previous version is
    # computed at publication.
    stored_diffs = models.JSONField(_("stored diffs"), default=dict, blank=True, editable=False)

    class Meta:
        verbose_name = _("published version")
        verbose_name_plural = _("published versions")
        ordering = ["controller__code", "-effective_on", "-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["controller", "label"], name="version_label_unique_per_controller"
            ),
            models.CheckConstraint(
                condition=Q(effective_on__gte=F("updated_on")), name="version_effective_not_before_update"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.controller} {self.label}"

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class PublishedEntry(models.Model):
    """One row of a published version's table, as frozen in its snapshot (``snapshot["operations"]``).

    Kept beside the snapshot so that a page of rows, the rows of one service or those a later change
    touched are read by index, without parsing a snapshot of 100,000 rows (issue 13). Written with the
    version and never changed; the snapshot stays the signed document (``snapshot_sha256``).
    """

    version = models.ForeignKey(
        PublishedVersion,
        verbose_name=_("published version"),
        on_delete=models.CASCADE,
        related_name="entries",
    )
    position = models.PositiveIntegerField(_("position"))
    key = models.CharField(_("identity"), max_length=700)
    # Not a foreign key: the operation may be deleted later; the version still names it.
    operation_id = models.BigIntegerField(_("operation id"), null=True, blank=True)
    entry = models.JSONField(_("row"))

    class Meta:
        verbose_name = _("published row")
        verbose_name_plural = _("published rows")
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="published_entry_position_unique"),
        ]
        indexes = [
            models.Index(fields=["version", "key"], name="published_entry_key"),
            models.Index(fields=["version", "operation_id"], name="published_entry_operation"),
        ]

    def __str__(self) -> str:
        return f"{self.version} #{self.position}"


# --- Findings -------------------------------------------------------------------------------------


class Severity(models.TextChoices):
    HIGH = "high", _("high")
    MEDIUM = "medium", _("medium")
    LOW = "low", _("low")


class FindingState(models.TextChoices):
    OPEN = "open", _("open")
    ACCEPTED = "accepted", _("accepted")
    FIXED = "fixed", _("fixed")


class Finding(models.Model):
    """One rule broken by one subject, stored so pages count and page them, with what the DPO decided.

    Kept current by ``findings.findings_refresh``; the message is stored as its parameters and worded in
    the reader's language when shown. ``resolved_at`` is set when the rule no longer holds (the finding
    is then fixed by itself); a finding that holds again is reopened.
    """

    rule = models.CharField(_("rule"), max_length=64)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity)
    operation = models.ForeignKey(
        Operation,
        verbose_name=_("processing operation"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="findings",
    )
    processor = models.ForeignKey(
        Processor,
        verbose_name=_("processor"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="findings",
    )
    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The operation's controller, for filtering and per-controller access; empty for a processor's.
    controller = models.ForeignKey(
        Controller,
        verbose_name=_("controller"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="findings",
    )
    subject_label = models.CharField(_("subject"), max_length=500)
    params = models.JSONField(_("message parameters"), default=dict, blank=True)
    fingerprint = models.CharField(_("fingerprint"), max_length=200, unique=True)
    state = models.CharField(_("state"), max_length=10, choices=FindingState, default=FindingState.OPEN)
    state_reason = models.TextField(_("reason"), blank=True)
    state_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    state_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Worst first, then in the rules' order: the severity's position times 100 plus the rule's position
    # in findings.RULES, written by the refresh, so a page of findings in that order is read off an index.
    rank = models.PositiveIntegerField(_("rank"), default=0, editable=False)

    history = register_history(excluded_fields=["rank"])

    class Meta:
        verbose_name = _("finding")
        verbose_name_plural = _("findings")
        ordering = ["rule", "subject_label", "id"]
        indexes = [
            models.Index(fields=["state", "severity", "rule"], name="finding_state_severity_rule"),
            models.Index(fields=["controller", "state"], name="finding_controller_state"),
            models.Index(fields=["state", "rank", "subject_label", "id"], name="finding_state_rank"),
            models.Index(
                fields=["controller", "state", "rank", "subject_label", "id"], name="finding_controller_rank"
            ),
            models.Index(fields=["state", "rule", "subject_label", "id"], name="finding_state_rule_subject"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(operation__isnull=False) | Q(processor__isnull=False) | Q(service__isnull=False),
                name="finding_has_a_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject_label}"


# --- Deletion notices -----------------------------------------------------------------------------


class DeletionNoticeLetter(models.Model):
    """A deletion notice sent to one recipient for some categories, and when it acknowledged it.

    Categories are stored as codes (a letter records what was asked, even if the taxonomy changes later);
    the sender's user name is kept as text so the record survives the user's deletion.
    """

    # Empty for a register-wide notice (a superuser's, across controllers).
    controller = models.ForeignKey(
        Controller,
        verbose_name=_("controller"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deletion_letters",
    )
    processor = models.ForeignKey(
        Processor, verbose_name=_("recipient"), on_delete=models.PROTECT, related_name="deletion_letters"
    )
    categories = models.JSONField(_("data category codes"), default=list)
    reply_by = models.DateField(_("reply by"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sent by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    sent_by_name = models.CharField(_("sent by (name)"), max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    history = register_history()

    class Meta:
        verbose_name = _("deletion notice letter")
        verbose_name_plural = _("deletion notice letters")
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["processor", "controller"], name="deletion_letter_recipient")]

    def __str__(self) -> str:
        return f"{self.processor} ({', '.join(self.categories)})"

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


# --- Reading order of operations (see Operation.order_*) ------------------------------------------


def fill_reading_order(operations: Iterable[Operation]) -> None:
    """Fill the reading order of operations a bulk writer inserts (no save, so no pre_save)."""
    for operation in operations:
        operation.fill_reading_order()


READING_ORDER_FIELDS = ("order_controller", "order_service", "order_processor")


@receiver(pre_save, sender=Operation, dispatch_uid="operation_fill_reading_order")
def operation_fill_reading_order(
    sender: type, instance: Operation, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """Before an operation is saved: its reading order, unless it is loaded, unmoved and already filled."""
    loaded = getattr(instance, "reading_order_loaded", None)
    if loaded == instance.reading_order_values() and instance.order_service:
        return
    before = tuple(getattr(instance, name) for name in READING_ORDER_FIELDS)
    # A fixture loaded raw may name a service or recipient that comes later in the file; the service's
    # or recipient's own save fills the order then (reading_order_follow).
    with contextlib.suppress(TypeError, ObjectDoesNotExist):
        instance.fill_reading_order()
    instance.reading_order_loaded = instance.reading_order_values()
    after = tuple(getattr(instance, name) for name in READING_ORDER_FIELDS)
    if update_fields is not None and instance.pk is not None and after != before:
        # A save of some fields (the services' claimed updates) would not write the order.
        Operation.objects.filter(pk=instance.pk).update(**dict(zip(READING_ORDER_FIELDS, after, strict=True)))


@receiver(post_save, dispatch_uid="reading_order_follow")
def reading_order_follow(sender: type, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """After a controller, service or recipient is saved with a new code or name: its operations follow."""
    if not isinstance(instance, ReadingOrderSource) or isinstance(instance, Operation):
        return
    values = instance.reading_order_values()
    if not created and getattr(instance, "reading_order_loaded", None) != values:
        instance.reading_order_update()
    instance.reading_order_loaded = values
