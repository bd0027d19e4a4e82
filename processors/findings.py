"""Compliance findings: rules evaluated over the register, each pointing at what to fix and why.

A rule is one ``Rule`` entry in ``RULES``: a stable code, a severity, the legal reference, a title, a fix
hint, and a function that selects the offending objects for a ``Scope`` (a queryset, or for the
near-duplicate rule a list computed from one query). Adding a rule is adding one entry; every rule costs
one or two queries whatever the size of the register, so ``findings()`` runs in a constant number.

Decisions the law leaves to the register:
- Only active operations are judged; a retired one no longer sends data.
- Sensitivity is the law's list (GB/T 35273-2020 Appendix B, the ``sensitive`` flag), not a controller's
  own extra categories, which decide how a table is presented rather than which duties apply.
- Separate consent is satisfied by separate or written consent, and not needed when the flow's legal
  basis is other than consent (PIPL Art. 13: bases (2)-(7) need no consent at all).
- A recipient has a contact when it has a phone or an email; a group has one when the group itself has
  one, or every member does. A website is not a contact (PIPL Art. 23 asks for 联系方式). A name is
  guaranteed by a database constraint, so the rule checks the contact.
- A PIA older than three years is stale: PIPL Art. 56 keeps PIA records three years, and Order 16's
  assessments last three years.
- The CAC Order 16 thresholds are applied to the yearly headcounts recorded on the operation. Whether
  the controller is a critical-information-infrastructure operator (which needs an assessment for any
  volume) is not recorded, so that case is not checked.
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from processors.models import (
    ConsentType,
    Controller,
    DataItem,
    LegalBasis,
    Operation,
    OperationStatus,
    Processor,
    Relationship,
    TransferMechanism,
)
from processors.names import near_duplicate_pairs


class Severity(models.TextChoices):
    HIGH = "high", _("high")
    MEDIUM = "medium", _("medium")
    LOW = "low", _("low")


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}

# PIPL Art. 55(3): entrusting, providing and disclosing need a PIA beforehand; an SDK that collects for
# itself is provided data.
PIA_RELATIONSHIPS = (
    Relationship.ENTRUSTED,
    Relationship.SUB_ENTRUSTED,
    Relationship.PROVISION,
    Relationship.PUBLIC_DISCLOSURE,
    Relationship.EMBEDDED_SDK,
)
# Arts. 22, 23: people are told the recipient's name and contact; Art. 39 adds every recipient abroad.
CONTACT_RELATIONSHIPS = (Relationship.PROVISION, Relationship.MERGER_TRANSFER)
SEPARATE_CONSENT_RELATIONSHIPS = (Relationship.PROVISION, Relationship.PUBLIC_DISCLOSURE)
SEPARATE_CONSENTS = (ConsentType.SEPARATE, ConsentType.WRITTEN)
ENTRUSTMENTS = (Relationship.ENTRUSTED, Relationship.SUB_ENTRUSTED)
PIA_VALID_YEARS = 3

# CAC Order 16, Arts. 5(4), 7 and 8: people per year from which a mechanism is required.
ASSESSMENT_SUBJECTS = 1_000_000
ASSESSMENT_SENSITIVE_SUBJECTS = 10_000
CONTRACT_SUBJECTS = 100_000
# Mechanisms that do not answer a volume that needs a security assessment.
BELOW_ASSESSMENT = (
    TransferMechanism.STANDARD_CONTRACT,
    TransferMechanism.CERTIFICATION,
    TransferMechanism.EXEMPT_VOLUME,
)


@dataclass(frozen=True)
class Scope:
    """Which part of the register the rules look at: all of it, or one controller, processor or operation."""

    controller: Controller | None = None
    processor: Processor | None = None
    operation: Operation | None = None
    today: datetime.date = field(default_factory=timezone.localdate)

    def operations(self) -> QuerySet[Operation]:
        """The active operations in scope (a processor's include its group's, which send it data too)."""
        queryset = Operation.objects.filter(status=OperationStatus.ACTIVE)
        if self.controller is not None:
            queryset = queryset.filter(service__controller=self.controller)
        if self.processor is not None:
            owners = [self.processor.pk] + (
                [self.processor.member_of_id] if self.processor.member_of_id else []
            )
            queryset = queryset.filter(processor__in=owners)
        if self.operation is not None:
            queryset = queryset.filter(pk=self.operation.pk)
        return queryset

    @property
    def is_whole_register(self) -> bool:
        return self.controller is None and self.processor is None and self.operation is None

    def processor_q(self) -> Q:
        """Processors in scope: the recipients of the operations in scope and their group members."""
        if self.is_whole_register:
            return Q()
        receiving = self.operations().values("processor")
        condition = Q(pk__in=receiving) | Q(member_of__in=receiving)
        return condition | Q(pk=self.processor.pk) if self.processor is not None else condition


@dataclass(frozen=True)
class Rule:
    """One check: what it is called, how bad, which law, what to do, and how to find the offenders."""

    code: str
    severity: str
    reference: Promise
    title: Promise
    fix: Promise
    select: Callable[[Scope], Iterable[models.Model]]
    detail: Callable[[Any], str] = lambda subject: ""

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "reference": str(self.reference),
            "title": str(self.title),
            "fix": str(self.fix),
        }


@dataclass(frozen=True)
class Finding:
    """One object that breaks one rule."""

    rule: Rule
    subject_model: str  # app_label.model_name
    subject_id: int
    subject_label: str
    detail: str = ""
    subject: models.Model | None = field(default=None, compare=False, repr=False)

    @property
    def code(self) -> str:
        return self.rule.code

    @property
    def severity(self) -> str:
        return self.rule.severity

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-serialisable data (for the API)."""
        return {
            **self.rule.to_dict(),
            "subject": {"model": self.subject_model, "id": self.subject_id, "label": self.subject_label},
            "detail": self.detail,
        }


# --- Building blocks ------------------------------------------------------------------------------


def _operations(scope: Scope) -> QuerySet[Operation]:
    """Operations in scope, labelled cheaply, with ``has_sensitive`` (a GB/T 35273 B.1 category)."""
    sensitive = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    return (
        scope.operations()
        .select_related("service", "processor")
        .annotate(has_sensitive=Exists(sensitive))
        .order_by("service__name", "processor__name_key", "pk")
    )


def _operation_label(operation: Operation) -> str:
    return f"{operation.service.name} → {operation.processor.primary_name}"


def _joined(names: Iterable[str]) -> str:
    return "、".join(names)


def _relationship_label(operation: Operation) -> str:
    return str(operation.get_relationship_display()) if operation.relationship else str(_("unclassified"))


# --- (a) Recipients told about without a contact ---------------------------------------------------


def _without_contact(scope: Scope) -> QuerySet[Processor]:
    flows = scope.operations().filter(Q(relationship__in=CONTACT_RELATIONSHIPS) | Q(cross_border=True))
    no_contact = Q(contact_phone="", contact_email="")
    members = Processor.objects.filter(member_of=OuterRef("pk"))
    return (
        Processor.objects.filter(Exists(flows.filter(processor=OuterRef("pk"))), no_contact)
        .filter(Q(kind=Processor.Kind.ORGANISATION) | ~Exists(members) | Exists(members.filter(no_contact)))
        .prefetch_related(
            Prefetch(
                "members",
                queryset=Processor.objects.filter(no_contact).order_by("name_key"),
                to_attr="members_without_contact",
            )
        )
        .order_by("name_key")
    )


def _without_contact_detail(processor: Processor) -> str:
    if processor.kind == Processor.Kind.GROUP and processor.members_without_contact:
        return str(_("Members without a contact: %(names)s")) % {
            "names": _joined(member.primary_name for member in processor.members_without_contact)
        }
    return ""


# --- (b) Flows that need separate consent ---------------------------------------------------------


def _separate_consent_missing(scope: Scope) -> QuerySet[Operation]:
    return (
        _operations(scope)
        .filter(
            Q(relationship__in=SEPARATE_CONSENT_RELATIONSHIPS) | Q(cross_border=True) | Q(has_sensitive=True)
        )
        .filter(legal_basis__in=["", LegalBasis.CONSENT])
        .exclude(consent_type__in=SEPARATE_CONSENTS)
    )


def _separate_consent_detail(operation: Operation) -> str:
    reasons = []
    if operation.has_sensitive:
        reasons.append(str(_("sensitive personal information (Art. 29)")))
    if operation.relationship == Relationship.PROVISION:
        reasons.append(str(_("provision to another handler (Art. 23)")))
    if operation.relationship == Relationship.PUBLIC_DISCLOSURE:
        reasons.append(str(_("public disclosure (Art. 25)")))
    if operation.cross_border:
        reasons.append(str(_("transfer abroad (Art. 39)")))
    consent = operation.get_consent_type_display() if operation.consent_type else _("not recorded")
    return str(_("Needs separate consent for: %(reasons)s; consent recorded: %(consent)s.")) % {
        "reasons": _joined(reasons),
        "consent": consent,
    }


# --- (c) Personal-information impact assessments ---------------------------------------------------


def _pia_due(scope: Scope) -> QuerySet[Operation]:
    return _operations(scope).filter(
        Q(relationship__in=PIA_RELATIONSHIPS) | Q(cross_border=True) | Q(has_sensitive=True)
    )


def _pia_missing(scope: Scope) -> QuerySet[Operation]:
    return _pia_due(scope).filter(pia_reference="")


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _pia_stale(scope: Scope) -> QuerySet[Operation]:
    cutoff = _years_before(scope.today, PIA_VALID_YEARS)
    return _pia_due(scope).exclude(pia_reference="").filter(pia_date__lt=cutoff)


def _pia_stale_detail(operation: Operation) -> str:
    return str(_("PIA %(reference)s dated %(date)s.")) % {
        "reference": operation.pia_reference,
        "date": operation.pia_date.isoformat(),
    }


# --- (d) Cross-border transfers -------------------------------------------------------------------


def _cross_border_no_mechanism(scope: Scope) -> QuerySet[Operation]:
    return (
        _operations(scope)
        .filter(cross_border=True, transfer_mechanism="")
        .select_related("service__controller")
        .prefetch_related(Prefetch("processor__members", queryset=Processor.objects.order_by("name_key")))
    )


def _destinations_detail(operation: Operation) -> str:
    """The destinations, and which recipients (a group's members one by one) are established abroad."""
    names = [str(country.name) for country in operation.destination_countries]
    home = operation.service.controller.country.code
    recipients = list(operation.processor.members.all()) or [operation.processor]
    abroad = [
        f"{recipient.primary_name} ({recipient.country.code})"
        for recipient in recipients
        if recipient.country and recipient.country.code != home
    ]
    parts = [
        str(_("Destinations: %(countries)s.")) % {"countries": _joined(names)}
        if names
        else str(_("No destination country recorded."))
    ]
    if abroad:
        parts.append(str(_("Recipients abroad: %(names)s.")) % {"names": _joined(abroad)})
    return " ".join(parts)


def required_mechanism(operation: Operation) -> str:
    """What CAC Order 16 requires for an operation's recorded yearly volumes: assessment, contract or none.

    Returns ``security_assessment`` (Art. 7), ``standard_contract`` (Art. 8: a standard contract or a
    certification, an assessment also does) or ``""`` (the Art. 5(4) volume exemption is available).
    ``operation.has_sensitive`` (annotated by the findings) counts as sensitive volume.
    """
    people = operation.annual_subjects or 0
    sensitive = operation.annual_sensitive_subjects or 0
    if people >= ASSESSMENT_SUBJECTS or sensitive >= ASSESSMENT_SENSITIVE_SUBJECTS:
        return TransferMechanism.SECURITY_ASSESSMENT.value
    if people >= CONTRACT_SUBJECTS or sensitive > 0 or getattr(operation, "has_sensitive", False):
        return TransferMechanism.STANDARD_CONTRACT.value
    return ""


def _mechanism_insufficient(scope: Scope) -> QuerySet[Operation]:
    needs_assessment = Q(annual_subjects__gte=ASSESSMENT_SUBJECTS) | Q(
        annual_sensitive_subjects__gte=ASSESSMENT_SENSITIVE_SUBJECTS
    )
    needs_contract = (
        Q(annual_subjects__gte=CONTRACT_SUBJECTS) | Q(annual_sensitive_subjects__gt=0) | Q(has_sensitive=True)
    )
    return _operations(scope).filter(
        Q(cross_border=True)
        & (
            (Q(transfer_mechanism__in=BELOW_ASSESSMENT) & needs_assessment)
            | (Q(transfer_mechanism=TransferMechanism.EXEMPT_VOLUME) & needs_contract)
        )
    )


def _mechanism_insufficient_detail(operation: Operation) -> str:
    if required_mechanism(operation) == TransferMechanism.SECURITY_ASSESSMENT:
        needed = _("a CAC security assessment (Order 16 Art. 7)")
    else:
        needed = _("a standard contract or certification (Order 16 Art. 8)")
    return str(
        _(
            "%(people)s people a year (%(sensitive)s with sensitive data) under “%(mechanism)s”: "
            "needs %(needed)s."
        )
    ) % {
        "people": operation.annual_subjects if operation.annual_subjects is not None else "?",
        "sensitive": operation.annual_sensitive_subjects
        if operation.annual_sensitive_subjects is not None
        else ("?" if operation.has_sensitive else 0),
        "mechanism": operation.get_transfer_mechanism_display(),
        "needed": needed,
    }


def _volume_unknown(scope: Scope) -> QuerySet[Operation]:
    return _operations(scope).filter(
        cross_border=True, transfer_mechanism=TransferMechanism.EXEMPT_VOLUME, annual_subjects__isnull=True
    )


# --- (e) Entrusted processing ---------------------------------------------------------------------


def _entrustment_without_contract(scope: Scope) -> QuerySet[Operation]:
    return _operations(scope).filter(relationship__in=ENTRUSTMENTS, contract_reference="")


def _entrustment_without_retention(scope: Scope) -> QuerySet[Operation]:
    return _operations(scope).filter(relationship__in=ENTRUSTMENTS, retention_at_recipient="")


# --- (f) Register quality -------------------------------------------------------------------------


def _unmapped_items(scope: Scope) -> QuerySet[Operation]:
    unmapped = DataItem.objects.filter(category__isnull=True)
    return (
        _operations(scope)
        .filter(Exists(unmapped.filter(operation=OuterRef("pk"))))
        .prefetch_related(
            Prefetch("data_items", queryset=unmapped.order_by("position", "pk"), to_attr="unmapped_items")
        )
    )


def _unmapped_items_detail(operation: Operation) -> str:
    return _joined(dict.fromkeys(item.text for item in operation.unmapped_items))


def _no_purpose(scope: Scope) -> QuerySet[Operation]:
    linked = Operation.purposes.through.objects.filter(operation=OuterRef("pk"))
    return _operations(scope).exclude(Exists(linked))


def _purpose_missing(scope: Scope) -> QuerySet[Operation]:
    return _no_purpose(scope).filter(purpose_text="")


def _purpose_unmapped(scope: Scope) -> QuerySet[Operation]:
    return _no_purpose(scope).exclude(purpose_text="")


def _purpose_unmapped_detail(operation: Operation) -> str:
    return str(_("Published as “%(text)s”.")) % {"text": operation.purpose_text}


def _near_duplicates(scope: Scope) -> list[Processor]:
    # One query: every processor's names, flagged whether it is in scope; the matching runs in Python.
    processors = {
        processor.pk: processor
        for processor in Processor.objects.only("pk", "name_zh", "name_en", "name_key").annotate(
            in_scope=models.Value(True)
            if scope.is_whole_register
            else models.ExpressionWrapper(scope.processor_q(), output_field=models.BooleanField())
        )
    }
    flagged: dict[int, Processor] = {}
    for first, second in near_duplicate_pairs(
        {pk: processor.name_key for pk, processor in processors.items()}
    ):
        subject, twin = sorted((processors[first], processors[second]), key=lambda p: (p.name_key, p.pk))
        if not subject.in_scope:
            subject, twin = twin, subject
            if not subject.in_scope:
                continue
        flagged.setdefault(subject.pk, subject)
        subject.__dict__.setdefault("near_duplicates", []).append(twin)
    return sorted(flagged.values(), key=lambda processor: processor.name_key)


def _near_duplicates_detail(processor: Processor) -> str:
    return str(_("Looks like: %(names)s")) % {
        "names": _joined(twin.primary_name for twin in processor.near_duplicates)
    }


# --- The rules ------------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        code="recipient_without_contact",
        severity=Severity.HIGH,
        reference=_("PIPL Arts. 22, 23, 39"),
        title=_("Recipient provided with personal information has no contact"),
        fix=_(
            "Record the recipient's contact phone or email (for a group, the group's or every member's): "
            "people must be told the recipient's name and contact."
        ),
        select=_without_contact,
        detail=_without_contact_detail,
    ),
    Rule(
        code="separate_consent_missing",
        severity=Severity.HIGH,
        reference=_("PIPL Arts. 23, 25, 29, 39"),
        title=_("Flow needs separate consent but records another kind"),
        fix=_(
            "Obtain separate consent for this flow and record it, or record the legal basis that makes "
            "consent unnecessary."
        ),
        select=_separate_consent_missing,
        detail=_separate_consent_detail,
    ),
    Rule(
        code="cross_border_without_mechanism",
        severity=Severity.HIGH,
        reference=_("PIPL Art. 38; CAC Order 16 Arts. 5, 7, 8"),
        title=_("Transfer abroad has no transfer mechanism"),
        fix=_(
            "Record the mechanism (security assessment, standard contract, certification) or the Order 16 "
            "exemption the transfer relies on, with the yearly numbers of people."
        ),
        select=_cross_border_no_mechanism,
        detail=_destinations_detail,
    ),
    Rule(
        code="cross_border_mechanism_insufficient",
        severity=Severity.HIGH,
        reference=_("CAC Order 16 Arts. 5(4), 7, 8"),
        title=_("Transfer mechanism is insufficient for the recorded volume"),
        fix=_(
            "From 1,000,000 people (or 10,000 with sensitive data) a year a CAC security assessment is "
            "needed; from 100,000 people, or any sensitive data, a standard contract or certification."
        ),
        select=_mechanism_insufficient,
        detail=_mechanism_insufficient_detail,
    ),
    Rule(
        code="pia_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 55, 56"),
        title=_("No personal-information impact assessment recorded"),
        fix=_(
            "Carry out a PIA before entrusting, providing, disclosing, transferring abroad or processing "
            "sensitive data, and record its reference and date."
        ),
        select=_pia_missing,
    ),
    Rule(
        code="pia_stale",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 56"),
        title=_("Impact assessment is more than three years old"),
        fix=_("Review the PIA and record the new reference and date."),
        select=_pia_stale,
        detail=_pia_stale_detail,
    ),
    Rule(
        code="entrustment_without_contract",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 21"),
        title=_("Entrusted processing has no contract recorded"),
        fix=_(
            "Record the data-processing agreement that fixes purpose, term, method, categories and measures."
        ),
        select=_entrustment_without_contract,
    ),
    Rule(
        code="entrustment_without_retention",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 21"),
        title=_("Entrusted processing has no retention term"),
        fix=_("Record how long the trustee keeps the data and that it returns or deletes it at the end."),
        select=_entrustment_without_retention,
    ),
    Rule(
        code="purpose_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 17, 23"),
        title=_("Operation states no purpose"),
        fix=_("State why the recipient receives the data and map it to a purpose."),
        select=_purpose_missing,
    ),
    Rule(
        code="cross_border_volume_unknown",
        severity=Severity.LOW,
        reference=_("CAC Order 16 Art. 5(4)"),
        title=_("Volume exemption claimed without a yearly headcount"),
        fix=_("Record how many people's data is sent abroad per calendar year."),
        select=_volume_unknown,
    ),
    Rule(
        code="purpose_unmapped",
        severity=Severity.LOW,
        reference=_("PIPL Art. 17"),
        title=_("Published purpose is mapped to no purpose code"),
        fix=_(
            "Map the published purpose to a purpose (or add an alias), so it can be searched and reported."
        ),
        select=_purpose_unmapped,
        detail=_purpose_unmapped_detail,
    ),
    Rule(
        code="unmapped_items",
        severity=Severity.LOW,
        reference=_("PIPL Art. 51(2); GB/T 35273-2020 Appendix A"),
        title=_("Data items not mapped to a category"),
        fix=_("Map each item to a data category (or teach the taxonomy an alias)."),
        select=_unmapped_items,
        detail=_unmapped_items_detail,
    ),
    Rule(
        code="processor_near_duplicate",
        severity=Severity.LOW,
        reference=_("register quality"),
        title=_("Possible duplicate processor"),
        fix=_("If both names are one company, merge them and keep the other name as an alias."),
        select=_near_duplicates,
        detail=_near_duplicates_detail,
    ),
)

RULES_BY_CODE = {rule.code: rule for rule in RULES}


def _label(subject: models.Model) -> str:
    if isinstance(subject, Operation):
        return _operation_label(subject)
    if isinstance(subject, Processor):
        return subject.primary_name
    return str(subject)


def findings(
    controller: Controller | None = None,
    processor: Processor | None = None,
    operation: Operation | None = None,
    *,
    rules: Iterable[Rule] = RULES,
    today: datetime.date | None = None,
) -> list[Finding]:
    """What breaks the rules in the whole register, or for one controller, processor or operation.

    Ordered by severity, then rule, then subject; one or two queries per rule.
    """
    scope = Scope(
        controller=controller, processor=processor, operation=operation, today=today or timezone.localdate()
    )
    found = []
    for rule in rules:
        for subject in rule.select(scope):
            found.append(
                Finding(
                    rule=rule,
                    subject_model=subject._meta.label_lower,
                    subject_id=subject.pk,
                    subject_label=_label(subject),
                    detail=rule.detail(subject),
                    subject=subject,
                )
            )
    order = {rule.code: position for position, rule in enumerate(RULES)}
    found.sort(key=lambda finding: (SEVERITY_ORDER[finding.severity], order.get(finding.code, len(order))))
    return found


def findings_summary(
    controller: Controller | None = None,
    processor: Processor | None = None,
    operation: Operation | None = None,
    *,
    today: datetime.date | None = None,
) -> dict[str, Any]:
    """How many findings there are, by severity and by rule."""
    found = findings(controller, processor, operation, today=today)
    by_severity = {severity.value: 0 for severity in Severity}
    by_rule = {rule.code: 0 for rule in RULES}
    for finding in found:
        by_severity[finding.severity] += 1
        by_rule[finding.code] += 1
    return {"total": len(found), **by_severity, "by_rule": by_rule}
