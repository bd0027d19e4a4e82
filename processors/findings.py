"""Compliance findings: rules evaluated over the register, each pointing at what to fix and why.

A rule is one ``Rule`` entry in ``RULES``: a stable code, a severity, the legal reference, a title, a fix
hint, and what it flags: an operation rule is a condition (a ``Q``) on the active operations, a processor
rule a function that selects its offenders (a queryset, or for the near-duplicate rule a list computed
from one query). Adding a rule is adding one entry; ``findings()`` costs one or two queries a rule
whatever the size of the register, and a refresh judges every operation rule in one query (a refresh of
the whole register, one per ``OPERATION_CHUNK`` operations, each chunk compared and written in turn).

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
- A row that leaves out what a notice must say is saved (issue 11: a table may publish it so) and flagged,
  one rule per missing part, so each has its own fix and count: no data items, no processing action
  (medium, PIPL Arts. 17, 23), no relationship (medium: which of Arts. 20, 21, 23 applies decides the
  other rules), no legal basis (low, Art. 13: the consent rule then assumes consent).

What the rules find is stored (``models.Finding``) and kept current by ``findings_refresh``: pages count
and page the stored rows; the rules run for the subjects a write touched (an operation and the processors
it reaches; a processor, its group and the operations reaching it), and a change of names compares only
the changed names with the register. The module is over 700 lines
because the rules and the refresh that stores their results read as one: a rule's parameters are what
the refresh stores and its message is how a page words them.

Why one module: the rules and the refresh that stores their results share ``Rule``, ``Scope`` and each
rule's parameters; the refresh is the rules run over a set of ids, and apart they would read each other's
internals.
"""

import datetime
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from types import MethodType, SimpleNamespace
from typing import Any

from django.db import models, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.where import WhereNode
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from rapidfuzz import fuzz, process

from processors import selectors
from processors.bulk import create_with_history
from processors.history import history_bulk_update
from processors.models import (
    ConsentType,
    Controller,
    DataItem,
    FindingState,
    LegalBasis,
    Operation,
    OperationStatus,
    Processor,
    Relationship,
    Severity,
    TransferMechanism,
)
from processors.models import Finding as StoredFinding
from processors.names import NearNames, near_duplicate_pairs

SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
NEAR_DUPLICATE_RULE = "processor_near_duplicate"
NAME_FIELDS = ("pk", "name_zh", "name_en", "name_key")
# Beyond this many processors whose near-duplicate finding a change of names can alter, the whole register
# is compared once instead.
NEAR_DUPLICATES_JUDGED_ONE_BY_ONE = 25

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
    # A refresh judges a set of subjects: operation ids for the operations' rules, processor ids for the
    # processors' (lists or ``values("pk")`` querysets, used as subqueries).
    operation_ids: Any = None
    processor_ids: Any = None
    # A whole refresh judges the operations a range of ids at a time: (lowest, below), ``None`` an open end.
    operation_range: tuple[int | None, int | None] | None = None

    def operations(self) -> QuerySet[Operation]:
        """The active operations in scope (a processor's include its group's, which send it data too)."""
        queryset = Operation.objects.filter(status=OperationStatus.ACTIVE)
        if self.controller is not None:
            queryset = queryset.filter(service__controller=self.controller)
        if self.processor is not None:
            queryset = queryset.filter(selectors.operations_reaching_q([self.processor]))
        if self.operation is not None:
            queryset = queryset.filter(pk=self.operation.pk)
        if self.operation_ids is not None:
            queryset = queryset.filter(pk__in=self.operation_ids)
        if self.operation_range is not None:
            queryset = queryset.filter(_id_range_q("pk", *self.operation_range))
        return queryset

    @property
    def is_whole_register(self) -> bool:
        return (
            self.controller is None
            and self.processor is None
            and self.operation is None
            and self.operation_ids is None
            and self.processor_ids is None
            and self.operation_range is None
        )

    def processor_q(self) -> Q:
        """Processors in scope: the recipients of the operations in scope and their group members."""
        if self.is_whole_register:
            return Q()
        condition = selectors.processors_reached_q(self.operations())
        return condition | Q(pk=self.processor.pk) if self.processor is not None else condition


@dataclass(frozen=True)
class Rule:
    """One check: what it is called, how bad, which law, what to do, and how to find the offenders."""

    code: str
    severity: str
    reference: Promise
    title: Promise
    fix: Promise
    # An operation rule is a condition on the active operations (``_operations``, which annotates
    # ``has_sensitive``): a refresh judges every operation rule in one query, each condition a column. A
    # processor rule selects its offenders itself.
    condition: Callable[[Scope], Q] | None = None
    select: Callable[[Scope], Iterable[models.Model]] | None = None
    # What the message needs, as JSON (stored), and the message worded from it in the active language.
    params: Callable[[Any], dict[str, Any]] = lambda subject: {}
    message: Callable[[dict[str, Any]], str] = lambda params: ""
    # "operation" or "processor": which kind of subject the rule judges.
    subject: str = "operation"
    # A rule comparing subjects with each other (near-duplicate names) is judged by its own refresh.
    whole_register: bool = False
    # The operation columns ``params`` reads: a refresh reads them as values, which is most of its speed
    # (building a model per offender cost a minute at 20,000 operations). ``None``: the parameters need
    # related rows, so the refresh loads the offenders as models, with what ``prepare`` adds.
    fields: tuple[str, ...] | None = ()
    prepare: Callable[[QuerySet], QuerySet] = lambda queryset: queryset

    def offenders(self, scope: Scope) -> Iterable[models.Model]:
        """What breaks the rule in scope, as models (operations in the register's order)."""
        if self.condition is None:
            return self.select(scope)
        return self.prepare(_operations(scope).filter(self.condition(scope)))

    def detail(self, subject: Any) -> str:
        """The message about this subject, in the active language."""
        return self.message(self.params(subject))

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


TIMESTAMPS = ("created_at", "updated_at")


def _operations(scope: Scope) -> QuerySet[Operation]:
    """Operations in scope, labelled cheaply, with ``has_sensitive`` (a GB/T 35273 B.1 category)."""
    sensitive = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    return (
        scope.operations()
        .select_related("service", "processor")
        # Timestamps are never judged; not converting them is a third of a full refresh.
        .defer(*(f"{prefix}{name}" for prefix in ("", "service__", "processor__") for name in TIMESTAMPS))
        .annotate(has_sensitive=Exists(sensitive))
        .order_by("service__name", "processor__name_key", "pk")
    )


def _operation_label(operation: Operation) -> str:
    return f"{operation.service.name} → {operation.processor.primary_name}"


def _joined(names: Iterable[str]) -> str:
    return "、".join(names)


def _choice_label(choices: type[models.TextChoices], value: str | None) -> str:
    """The label of a stored choice in the active language ("" for none, the code for an unknown one)."""
    if not value:
        return ""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _relationship_label(operation: Operation) -> str:
    return str(operation.get_relationship_display()) if operation.relationship else str(_("unclassified"))


# --- (a) Recipients told about without a contact ---------------------------------------------------


def _without_contact(scope: Scope) -> QuerySet[Processor]:
    # In a refresh of some processors (``processor_ids``) every active flow counts: the scope has no
    # operation ids then.
    flows = scope.operations().filter(Q(relationship__in=CONTACT_RELATIONSHIPS) | Q(cross_border=True))
    no_contact = Q(contact_phone="", contact_email="")
    members = Processor.objects.filter(member_of=OuterRef("pk"))
    processors = Processor.objects.all()
    if scope.processor_ids is not None:
        processors = processors.filter(pk__in=scope.processor_ids)
    return (
        processors.filter(Exists(flows.filter(processor=OuterRef("pk"))), no_contact)
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


def _without_contact_params(processor: Processor) -> dict[str, Any]:
    if processor.kind == Processor.Kind.GROUP and processor.members_without_contact:
        return {"members": [member.primary_name for member in processor.members_without_contact]}
    return {}


def _without_contact_message(params: dict[str, Any]) -> str:
    if params.get("members"):
        return str(_("Members without a contact: %(names)s")) % {"names": _joined(params["members"])}
    return ""


# --- (b) Flows that need separate consent ---------------------------------------------------------


def _separate_consent_missing(scope: Scope) -> Q:
    return (
        (Q(relationship__in=SEPARATE_CONSENT_RELATIONSHIPS) | Q(cross_border=True) | Q(has_sensitive=True))
        & Q(legal_basis__in=["", LegalBasis.CONSENT])
        & ~Q(consent_type__in=SEPARATE_CONSENTS)
    )


def _separate_consent_params(operation: Operation) -> dict[str, Any]:
    return {
        "sensitive": bool(operation.has_sensitive),
        "relationship": operation.relationship,
        "cross_border": operation.cross_border,
        "consent": operation.consent_type,
    }


def _separate_consent_message(params: dict[str, Any]) -> str:
    reasons = []
    if params.get("sensitive"):
        reasons.append(str(_("sensitive personal information (Art. 29)")))
    if params.get("relationship") == Relationship.PROVISION:
        reasons.append(str(_("provision to another handler (Art. 23)")))
    if params.get("relationship") == Relationship.PUBLIC_DISCLOSURE:
        reasons.append(str(_("public disclosure (Art. 25)")))
    if params.get("cross_border"):
        reasons.append(str(_("transfer abroad (Art. 39)")))
    consent = _choice_label(ConsentType, params.get("consent")) or _("not recorded")
    return str(_("Needs separate consent for: %(reasons)s; consent recorded: %(consent)s.")) % {
        "reasons": _joined(reasons),
        "consent": consent,
    }


# --- (c) Personal-information impact assessments ---------------------------------------------------


def _pia_due(scope: Scope) -> Q:
    return Q(relationship__in=PIA_RELATIONSHIPS) | Q(cross_border=True) | Q(has_sensitive=True)


def _pia_missing(scope: Scope) -> Q:
    return _pia_due(scope) & Q(pia_reference="")


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _pia_stale(scope: Scope) -> Q:
    cutoff = _years_before(scope.today, PIA_VALID_YEARS)
    return _pia_due(scope) & ~Q(pia_reference="") & Q(pia_date__lt=cutoff)


def _pia_stale_params(operation: Operation) -> dict[str, Any]:
    return {"reference": operation.pia_reference, "date": operation.pia_date.isoformat()}


def _pia_stale_message(params: dict[str, Any]) -> str:
    return str(_("PIA %(reference)s dated %(date)s.")) % {
        "reference": params.get("reference", ""),
        "date": params.get("date", ""),
    }


# --- (d) Cross-border transfers -------------------------------------------------------------------


def _cross_border_no_mechanism(scope: Scope) -> Q:
    return Q(cross_border=True, transfer_mechanism="")


def _with_recipients(operations: QuerySet[Operation]) -> QuerySet[Operation]:
    return operations.select_related("service__controller").prefetch_related(
        Prefetch("processor__members", queryset=Processor.objects.order_by("name_key"))
    )


def _destinations_params(operation: Operation) -> dict[str, Any]:
    """The destinations, and which recipients (a group's members one by one) are established abroad."""
    home = operation.service.controller.country.code
    recipients = list(operation.processor.members.all()) or [operation.processor]
    return {
        "countries": [country.code for country in operation.destination_countries],
        "abroad": [
            [recipient.primary_name, recipient.country.code]
            for recipient in recipients
            if recipient.country and recipient.country.code != home
        ],
    }


def _destinations_message(params: dict[str, Any]) -> str:
    names = [str(countries.name(code) or code) for code in params.get("countries", [])]
    abroad = [f"{name} ({code})" for name, code in params.get("abroad", [])]
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


def _mechanism_insufficient(scope: Scope) -> Q:
    needs_assessment = Q(annual_subjects__gte=ASSESSMENT_SUBJECTS) | Q(
        annual_sensitive_subjects__gte=ASSESSMENT_SENSITIVE_SUBJECTS
    )
    needs_contract = (
        Q(annual_subjects__gte=CONTRACT_SUBJECTS) | Q(annual_sensitive_subjects__gt=0) | Q(has_sensitive=True)
    )
    return Q(cross_border=True) & (
        (Q(transfer_mechanism__in=BELOW_ASSESSMENT) & needs_assessment)
        | (Q(transfer_mechanism=TransferMechanism.EXEMPT_VOLUME) & needs_contract)
    )


def _mechanism_insufficient_params(operation: Operation) -> dict[str, Any]:
    return {
        "people": operation.annual_subjects,
        "sensitive": operation.annual_sensitive_subjects,
        "has_sensitive": bool(operation.has_sensitive),
        "mechanism": operation.transfer_mechanism,
        "needed": required_mechanism(operation),
    }


def _mechanism_insufficient_message(params: dict[str, Any]) -> str:
    if params.get("needed") == TransferMechanism.SECURITY_ASSESSMENT:
        needed = _("a CAC security assessment (Order 16 Art. 7)")
    else:
        needed = _("a standard contract or certification (Order 16 Art. 8)")
    return str(
        _(
            "%(people)s people a year (%(sensitive)s with sensitive data) under “%(mechanism)s”: "
            "needs %(needed)s."
        )
    ) % {
        "people": params["people"] if params.get("people") is not None else "?",
        "sensitive": params["sensitive"]
        if params.get("sensitive") is not None
        else ("?" if params.get("has_sensitive") else 0),
        "mechanism": _choice_label(TransferMechanism, params.get("mechanism")),
        "needed": needed,
    }


def _volume_unknown(scope: Scope) -> Q:
    return Q(
        cross_border=True, transfer_mechanism=TransferMechanism.EXEMPT_VOLUME, annual_subjects__isnull=True
    )


# --- (e) Entrusted processing ---------------------------------------------------------------------


def _entrustment_without_contract(scope: Scope) -> Q:
    return Q(relationship__in=ENTRUSTMENTS, contract_reference="")


def _entrustment_without_retention(scope: Scope) -> Q:
    return Q(relationship__in=ENTRUSTMENTS, retention_at_recipient="")


# --- (f) Register quality -------------------------------------------------------------------------


def _unmapped_items(scope: Scope) -> Q:
    return Q(Exists(DataItem.objects.filter(category__isnull=True, operation=OuterRef("pk"))))


def _with_unmapped_items(operations: QuerySet[Operation]) -> QuerySet[Operation]:
    unmapped = DataItem.objects.filter(category__isnull=True).order_by("position", "pk")
    return operations.prefetch_related(Prefetch("data_items", queryset=unmapped, to_attr="unmapped_items"))


def _unmapped_items_params(operation: Operation) -> dict[str, Any]:
    return {"items": list(dict.fromkeys(item.text for item in operation.unmapped_items))}


def _unmapped_items_message(params: dict[str, Any]) -> str:
    return _joined(params.get("items", []))


def _no_purpose() -> Q:
    return ~Q(Exists(Operation.purposes.through.objects.filter(operation=OuterRef("pk"))))


def _purpose_missing(scope: Scope) -> Q:
    return _no_purpose() & Q(purpose_text="")


def _purpose_unmapped(scope: Scope) -> Q:
    return _no_purpose() & ~Q(purpose_text="")


def _purpose_unmapped_params(operation: Operation) -> dict[str, Any]:
    return {"text": operation.purpose_text}


def _purpose_unmapped_message(params: dict[str, Any]) -> str:
    return str(_("Published as “%(text)s”.")) % {"text": params.get("text", "")}


def _data_items_missing(scope: Scope) -> Q:
    return ~Q(Exists(DataItem.objects.filter(operation=OuterRef("pk"))))


def _action_missing(scope: Scope) -> Q:
    return ~Q(Exists(Operation.actions.through.objects.filter(operation=OuterRef("pk"))))


def _action_missing_params(operation: Operation) -> dict[str, Any]:
    return {"text": operation.actions_text} if operation.actions_text else {}


def _action_missing_message(params: dict[str, Any]) -> str:
    if not params.get("text"):
        return ""
    return str(_("Published as “%(text)s”, which names no known processing action.")) % {
        "text": params["text"]
    }


def _relationship_missing(scope: Scope) -> Q:
    return Q(relationship="")


def _legal_basis_missing(scope: Scope) -> Q:
    return Q(legal_basis="")


def _near_duplicates(scope: Scope) -> list[Processor]:
    # One query: every processor's names, flagged whether it is in scope; the matching runs in Python.
    processors = {
        processor.pk: processor
        for processor in Processor.objects.only(*NAME_FIELDS).annotate(
            in_scope=models.Value(True)
            if scope.is_whole_register
            else models.ExpressionWrapper(scope.processor_q(), output_field=models.BooleanField())
        )
    }
    flagged: dict[int, Processor] = {}
    for first, second in near_duplicate_pairs(
        {pk: processor.name_key for pk, processor in processors.items()}
    ):
        subject, twin = sorted((processors[first], processors[second]), key=_name_order)
        if not subject.in_scope:
            subject, twin = twin, subject
            if not subject.in_scope:
                continue
        flagged.setdefault(subject.pk, subject)
        subject.__dict__.setdefault("near_duplicates", []).append(twin)
    for subject in flagged.values():
        subject.near_duplicates.sort(key=_name_order)
    return sorted(flagged.values(), key=_name_order)


def _name_order(processor: Processor) -> tuple[str, int]:
    return (processor.name_key, processor.pk)


def _near_duplicates_of(changed: Iterable[int]) -> tuple[set[int], list[Processor]]:
    """The processors whose near-duplicate finding a change of these processors' names can change, and
    those of them that are flagged (with ``near_duplicates``), exactly as the whole register flags them.

    A pair is what ``near_duplicate_pairs`` reports: one name among the other's closest names. So the
    judged processors are the changed ones, every name near one of them, and those whose stored finding
    named one of them (before a rename). Each is compared with the names of a fitting length
    (rapidfuzz's ``process.extract`` with the ratio as cutoff), and a pair is kept when one name is among
    the other's closest: a few comparisons per changed name instead of every name against every other.
    """
    processors = {processor.pk: processor for processor in Processor.objects.only(*NAME_FIELDS)}
    keys = {pk: processor.name_key for pk, processor in processors.items() if processor.name_key}
    owners = {key: pk for pk, key in keys.items()}
    index = NearNames(keys.values())
    closest: dict[str, list[str]] = {}

    def close(key: str) -> list[str]:
        if key not in closest:
            closest[key] = index.close_to(key)
        return closest[key]

    def candidates(key: str) -> set[str]:
        # The names a pair with ``key`` can be made of: within the ratio, or related to it otherwise
        # (``close_to``: one core, one brand).
        return set(_within_ratio(index, key)) | set(close(key))

    changed = {pk for pk in changed if pk in keys}
    judged = set(changed)
    for pk in changed:
        judged.update(owners[key] for key in candidates(keys[pk]))
    stored = StoredFinding.objects.filter(rule=NEAR_DUPLICATE_RULE, resolved_at__isnull=True)
    for pk, params in stored.values_list("processor_id", "params"):
        named = (params or {}).get("ids")
        # A row stored before it kept the ids is judged again (it then keeps them).
        if named is None or changed.intersection(named):
            judged.add(pk)
    if len(judged) > NEAR_DUPLICATES_JUDGED_ONE_BY_ONE:
        # Many names close to each other (a register of 受托方0001号, 受托方0002号…): comparing the register
        # once is cheaper than comparing each judged name with its many neighbours.
        flagged = [subject for subject in _near_duplicates(Scope()) if subject.pk in judged]
        return judged & set(processors), flagged
    flagged = []
    for pk in sorted(judged & set(keys)):
        subject, key = processors[pk], keys[pk]
        twins = [
            processors[owners[other]]
            for other in candidates(key)
            if other != key
            and (other in close(key) or key in close(other))
            and _name_order(processors[owners[other]]) > _name_order(subject)
        ]
        if twins:
            subject.near_duplicates = sorted(twins, key=_name_order)
            flagged.append(subject)
    return judged & set(processors), sorted(flagged, key=_name_order)


def _within_ratio(index: NearNames, key: str) -> list[str]:
    """Every indexed key whose similarity to ``key`` reaches the index's ratio (itself included)."""
    size = len(key)
    # ratio = 2·lcs / (a + b) ≤ 2·min(a, b) / (a + b): lengths outside this window never reach it.
    low = math.ceil(size * index.ratio / (2 - index.ratio))
    high = math.floor(size * (2 - index.ratio) / index.ratio)
    candidates = [other for length in range(low, high + 1) for other in index.by_length.get(length, ())]
    matches = process.extract(
        key, candidates, scorer=fuzz.ratio, processor=None, score_cutoff=index.ratio * 100, limit=None
    )
    return [other for other, _score, _index in matches]


def _near_duplicates_params(processor: Processor) -> dict[str, Any]:
    # The ids let a rename find the findings that named the old name.
    return {
        "names": [twin.primary_name for twin in processor.near_duplicates],
        "ids": [twin.pk for twin in processor.near_duplicates],
    }


def _near_duplicates_message(params: dict[str, Any]) -> str:
    return str(_("Looks like: %(names)s")) % {"names": _joined(params.get("names", []))}


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
        params=_without_contact_params,
        message=_without_contact_message,
        subject="processor",
        fields=None,
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
        condition=_separate_consent_missing,
        params=_separate_consent_params,
        message=_separate_consent_message,
        fields=("has_sensitive", "relationship", "cross_border", "consent_type"),
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
        condition=_cross_border_no_mechanism,
        params=_destinations_params,
        message=_destinations_message,
        fields=None,
        prepare=_with_recipients,
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
        condition=_mechanism_insufficient,
        params=_mechanism_insufficient_params,
        message=_mechanism_insufficient_message,
        fields=("annual_subjects", "annual_sensitive_subjects", "has_sensitive", "transfer_mechanism"),
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
        condition=_pia_missing,
    ),
    Rule(
        code="pia_stale",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 56"),
        title=_("Impact assessment is more than three years old"),
        fix=_("Review the PIA and record the new reference and date."),
        condition=_pia_stale,
        params=_pia_stale_params,
        message=_pia_stale_message,
        fields=("pia_reference", "pia_date"),
    ),
    Rule(
        code="entrustment_without_contract",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 21"),
        title=_("Entrusted processing has no contract recorded"),
        fix=_(
            "Record the data-processing agreement that fixes purpose, term, method, categories and measures."
        ),
        condition=_entrustment_without_contract,
    ),
    Rule(
        code="entrustment_without_retention",
        severity=Severity.MEDIUM,
        reference=_("PIPL Art. 21"),
        title=_("Entrusted processing has no retention term"),
        fix=_("Record how long the trustee keeps the data and that it returns or deletes it at the end."),
        condition=_entrustment_without_retention,
    ),
    Rule(
        code="purpose_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 17, 23"),
        title=_("Operation states no purpose"),
        fix=_("State why the recipient receives the data and map it to a purpose."),
        condition=_purpose_missing,
    ),
    Rule(
        code="data_items_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 17, 23"),
        title=_("Operation names no data items"),
        fix=_(
            "List the personal information the recipient receives: people must be told its categories. "
            "If it receives none, retire the row."
        ),
        condition=_data_items_missing,
    ),
    Rule(
        code="action_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 17, 23"),
        title=_("Operation states no processing action"),
        fix=_("Record how the recipient processes the data (collection, storage, use, transmission…)."),
        condition=_action_missing,
        params=_action_missing_params,
        message=_action_missing_message,
        fields=("actions_text",),
    ),
    Rule(
        code="relationship_missing",
        severity=Severity.MEDIUM,
        reference=_("PIPL Arts. 20, 21, 23"),
        title=_("Operation does not say how the recipient stands to the controller"),
        fix=_(
            "Record the relationship (entrusted processing, provision, joint processing, SDK…): it decides "
            "which duties apply, and the contract, consent and PIA rules judge a row by it."
        ),
        condition=_relationship_missing,
    ),
    Rule(
        code="cross_border_volume_unknown",
        severity=Severity.LOW,
        reference=_("CAC Order 16 Art. 5(4)"),
        title=_("Volume exemption claimed without a yearly headcount"),
        fix=_("Record how many people's data is sent abroad per calendar year."),
        condition=_volume_unknown,
    ),
    Rule(
        code="purpose_unmapped",
        severity=Severity.LOW,
        reference=_("PIPL Art. 17"),
        title=_("Published purpose is mapped to no purpose code"),
        fix=_(
            "Map the published purpose to a purpose (or add an alias), so it can be searched and reported."
        ),
        condition=_purpose_unmapped,
        params=_purpose_unmapped_params,
        message=_purpose_unmapped_message,
        fields=("purpose_text",),
    ),
    Rule(
        code="unmapped_items",
        severity=Severity.LOW,
        reference=_("PIPL Art. 51(2); GB/T 35273-2020 Appendix A"),
        title=_("Data items not mapped to a category"),
        fix=_("Map each item to a data category (or teach the taxonomy an alias)."),
        condition=_unmapped_items,
        params=_unmapped_items_params,
        message=_unmapped_items_message,
        fields=None,
        prepare=_with_unmapped_items,
    ),
    Rule(
        code="legal_basis_missing",
        severity=Severity.LOW,
        reference=_("PIPL Art. 13"),
        title=_("Operation records no legal basis"),
        fix=_(
            "Record the legal basis of the flow (consent, contract, statutory duty…); without one the "
            "register assumes consent."
        ),
        condition=_legal_basis_missing,
    ),
    Rule(
        code=NEAR_DUPLICATE_RULE,
        severity=Severity.LOW,
        reference=_("register quality"),
        title=_("Possible duplicate processor"),
        fix=_("If both names are one company, merge them and keep the other name as an alias."),
        select=_near_duplicates,
        params=_near_duplicates_params,
        message=_near_duplicates_message,
        subject="processor",
        whole_register=True,
        fields=None,
    ),
)

RULES_BY_CODE = {rule.code: rule for rule in RULES}
RULE_POSITIONS = {rule.code: position for position, rule in enumerate(RULES)}
# The rank steps of a severity: room for this many rules.
RANK_STEP = 100
assert len(RULES) < RANK_STEP


def finding_rank(severity: str, rule: str) -> int:
    """The stored ``Finding.rank`` of a finding: worst severity first, then the rules' order, exactly as
    ordering by (severity's position, rule's position) would sort it; an unknown severity or rule (a
    finding of a rule since removed) sorts after the known ones, as that ordering's defaults did."""
    return SEVERITY_ORDER.get(severity, len(SEVERITY_ORDER)) * RANK_STEP + RULE_POSITIONS.get(
        rule, len(RULES)
    )


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
        for subject in rule.offenders(scope):
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


# --- Stored findings ------------------------------------------------------------------------------
# The rules above judge; what they find is stored as ``models.Finding`` rows, so pages count and page
# them instead of judging the whole register per request. Every write that changes what a rule judges
# refreshes its subjects in its own transaction; ``refresh_findings`` (daily) refreshes everything, which
# is also what ages PIAs out.

OPEN_STATES = (FindingState.OPEN,)


def fingerprint(rule: Rule, subject: models.Model) -> str:
    """The identity of a finding across refreshes: rule and subject (each rule flags a subject once)."""
    return f"{rule.code}:{subject._meta.model_name}:{subject.pk}"


def _operation_offences(scope: Scope) -> dict[str, dict[str, Any]]:
    """Every operation rule judged over the scope in one query (each rule's condition a column), as the
    stored columns of the findings by fingerprint. The rules whose parameters need related rows load
    their offenders as models afterwards, with the rule's prefetches."""
    rules = [rule for rule in RULES if rule.condition is not None]
    # Which rules a row breaks, as the bits of one integer: one column to read instead of one per rule.
    broken = sum(
        (
            models.Case(
                models.When(rule.condition(scope), then=models.Value(1 << number)),
                default=models.Value(0),
                output_field=models.IntegerField(),
            )
            for number, rule in enumerate(rules)
        ),
        start=models.Value(0, output_field=models.IntegerField()),
    )
    columns = sorted({name for rule in rules for name in rule.fields or ()})
    rows = (
        _operations(scope)
        .order_by()
        .annotate(broken=broken)
        .values(
            "pk",
            "service_id",
            "service__controller_id",
            "service__name",
            *PROCESSOR_NAMES,
            *columns,
            "broken",
        )
    )
    found: dict[str, dict[str, Any]] = {}
    subjects: dict[int, dict[str, Any]] = {}
    to_load: dict[int, list[int]] = {}
    for row in rows:
        pk, bits = row["pk"], row["broken"]
        for number, rule in enumerate(rules):
            if not bits >> number & 1:
                continue
            if pk not in subjects:
                name = row["processor__name_zh"] or row["processor__name_en"]
                subjects[pk] = {
                    "subject_label": f"{row['service__name']} → {name}"[:500],
                    "operation_id": pk,
                    "service_id": row["service_id"],
                    "controller_id": row["service__controller_id"],
                }
            if rule.fields is None:
                to_load.setdefault(number, []).append(pk)
                continue
            params = rule.params(SimpleNamespace(**row) if rule.fields else None)
            found[f"{rule.code}:operation:{pk}"] = _operation_finding(rule, params, subjects[pk])
    for number, pks in to_load.items():
        rule = rules[number]
        # A whole refresh selects the offenders again rather than sending every id back.
        offenders = (
            rule.offenders(scope)
            if scope.operation_ids is None
            else rule.prepare(_operations(scope).filter(pk__in=pks))
        )
        for operation in offenders:
            if operation.pk in subjects:
                found[f"{rule.code}:operation:{operation.pk}"] = _operation_finding(
                    rule, rule.params(operation), subjects[operation.pk]
                )
    return found


def _operation_finding(rule: Rule, params: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    return {**_rule_columns(rule), "params": params, **subject, "processor_id": None}


def _rule_columns(rule: Rule) -> dict[str, Any]:
    """The stored columns a rule gives each of its findings (a refresh builds 440,000 findings at
    100,000 operations: these are worked out once a rule and refresh)."""
    columns = _RULE_COLUMNS.get(rule.code)
    if columns is None:
        columns = _RULE_COLUMNS[rule.code] = {
            "rule": rule.code,
            "severity": str(rule.severity),
            "rank": finding_rank(rule.severity, rule.code),
        }
    return columns


_RULE_COLUMNS: dict[str, dict[str, Any]] = {}


PROCESSOR_NAMES = ("processor__name_zh", "processor__name_en")


def _refresh_subjects(
    operations: Iterable[Any] | None, processors: Iterable[Any] | None, controller: Controller | None
) -> tuple[list[int], list[int], set[int]] | None:
    """The operation and processor ids a partial refresh judges and the processors whose names changed;
    ``None`` when they are so many that judging the whole register is as cheap (and one statement).

    A write of an operation judges it and the processors it reaches (their contact rule counts its
    flows); a write of a processor judges it, its group, and the operations that reach it (their
    findings name it).
    """
    operation_ids = {getattr(operation, "pk", operation) for operation in operations or ()}
    given = {getattr(processor, "pk", processor) for processor in processors or ()}
    if len(operation_ids) > ID_CHUNK or len(given) > ID_CHUNK:
        return None
    processor_objects = list(Processor.objects.filter(pk__in=given).only("pk", "member_of_id"))
    condition = Q(pk__in=operation_ids)
    if controller is not None:
        condition |= Q(service__controller=controller)
    if processor_objects:
        condition |= selectors.operations_reaching_q(processor_objects)
    judged = list(Operation.objects.filter(condition).order_by().values_list("pk", flat=True)[: ID_CHUNK + 1])
    if len(judged) > ID_CHUNK:
        return None
    reached = Processor.objects.filter(
        selectors.processors_reached_q(Operation.objects.filter(pk__in=judged))
    )
    processor_ids = set(reached.order_by().values_list("pk", flat=True)[: ID_CHUNK + 1])
    processor_ids |= {processor.pk for processor in processor_objects}
    processor_ids |= {processor.member_of_id for processor in processor_objects if processor.member_of_id}
    if len(processor_ids) > ID_CHUNK:
        return None
    return judged, sorted(processor_ids), {processor.pk for processor in processor_objects}


def _stored_rows(codes: list[str], subject: str, ids: list[int] | None) -> list[QuerySet]:
    """Querysets of the stored rows of these rules about these subjects (all of them for ``None``), in
    statements of at most ``ID_CHUNK`` ids; one per subject field, so each reads its own index."""
    rows = StoredFinding.objects.filter(rule__in=codes)
    if ids is None:
        return [rows]
    return [
        rows.filter(**{f"{subject}__in": ids[start : start + ID_CHUNK]})
        for start in range(0, len(ids), ID_CHUNK)
    ]


# Operations a whole refresh judges at once, by ranges of their ids (no list of ids is sent): what it finds
# and what is stored about them are held one chunk at a time, not 440,000 findings at 100,000 operations.
OPERATION_CHUNK = 10_000


@transaction.atomic
def findings_refresh(
    *,
    operations: Iterable[Any] | None = None,
    processors: Iterable[Any] | None = None,
    controller: Controller | None = None,
    today: datetime.date | None = None,
) -> dict[str, int]:
    """Judge the given subjects (or, with none given, the whole register) and bring the stored rows in line.

    New findings are created open; a finding that no longer holds is resolved (fixed by itself); one that
    holds again is reopened; accepted and fixed ones keep their state while they hold. Returns counts.
    """
    now = timezone.now()
    today = today or timezone.localdate()
    _RULE_COLUMNS.clear()  # worked out again from RULES at each refresh
    whole = operations is None and processors is None and controller is None
    subjects = None if whole else _refresh_subjects(operations, processors, controller)
    counts = {"found": 0, "created": 0, "changed": 0, "resolved": 0}
    if subjects is None:
        _refresh_whole_register(today, now, counts)
        return counts
    operation_ids, processor_ids, renamed = subjects
    operation_codes = [rule.code for rule in RULES if rule.subject == "operation"]
    processor_codes = [rule.code for rule in RULES if rule.subject == "processor" and not rule.whole_register]
    existing_rows = [
        *_stored_rows(operation_codes, "operation", operation_ids),
        *_stored_rows(processor_codes, "processor", processor_ids),
    ]
    found = _operation_offences(Scope(today=today, operation_ids=operation_ids))
    found.update(_processor_offences(Scope(today=today, processor_ids=processor_ids)))
    # Near-duplicate names: only what a change of names can alter.
    if renamed:
        judged, flagged = _near_duplicates_of(renamed)
        existing_rows += _stored_rows([NEAR_DUPLICATE_RULE], "processor", sorted(judged))
        found.update(_near_duplicate_findings(flagged))
    seen = _bring_in_line(found, existing_rows, now, counts)
    # Rows found again without a change: only the time they were last seen moves (no history entry).
    for start in range(0, len(seen), ID_CHUNK):
        StoredFinding.objects.filter(pk__in=seen[start : start + ID_CHUNK]).update(last_seen=now)
    return counts


def _refresh_whole_register(today: datetime.date, now: datetime.datetime, counts: dict[str, int]) -> None:
    """Every rule over the whole register: the operations' findings a range of operation ids at a time,
    then the processors' findings, each part's stored rows read, compared and written before the next.

    The ranges follow every operation, whatever its status, the first open below and the last open
    above, so every stored row that names an operation is read by one range (a retired operation's
    findings are resolved there); the rows that name none (the processors', or a removed rule's) are
    read with the processors'. A deleted operation's findings are deleted with it (``on_delete``).
    """
    for lowest, below in _operation_ranges():
        scope = Scope(today=today, operation_range=(lowest, below))
        stored = StoredFinding.objects.filter(
            _id_range_q("operation_id", lowest, below), operation__isnull=False
        )
        _bring_in_line(_operation_offences(scope), [stored], now, counts)
    scope = Scope(today=today)
    found = _processor_offences(scope)
    found.update(_near_duplicate_findings(_near_duplicates(scope)))
    _bring_in_line(found, [StoredFinding.objects.filter(operation__isnull=True)], now, counts)
    # Rows found again without a change: only the time they were last seen moves (no history entry).
    StoredFinding.objects.filter(resolved_at__isnull=True).exclude(last_seen=now).update(last_seen=now)


def _operation_ranges() -> Iterator[tuple[int | None, int | None]]:
    """Ranges of operation ids, (lowest, below), of ``OPERATION_CHUNK`` operations each; the first has no
    lower bound and the last no upper one. Each bound is one seek in the primary key's index."""
    lowest = None
    while True:
        ids = Operation.objects.order_by("pk").values_list("pk", flat=True)
        if lowest is not None:
            ids = ids.filter(pk__gte=lowest)
        bound = list(ids[OPERATION_CHUNK : OPERATION_CHUNK + 1])
        below = bound[0] if bound else None
        yield lowest, below
        if below is None:
            return
        lowest = below


def _id_range_q(name: str, lowest: int | None, below: int | None) -> Q:
    condition = Q()
    if lowest is not None:
        condition &= Q(**{f"{name}__gte": lowest})
    if below is not None:
        condition &= Q(**{f"{name}__lt": below})
    return condition


def _processor_offences(scope: Scope) -> dict[str, dict[str, Any]]:
    """The processor rules' findings in scope (the near-duplicate rule apart), by fingerprint."""
    found = {}
    for rule in RULES:
        if rule.subject == "processor" and not rule.whole_register:
            for subject in rule.offenders(scope):
                found[fingerprint(rule, subject)] = _processor_finding(rule, subject, rule.params(subject))
    return found


def _near_duplicate_findings(flagged: Iterable[Processor]) -> dict[str, dict[str, Any]]:
    near_duplicates = RULES_BY_CODE[NEAR_DUPLICATE_RULE]
    return {
        fingerprint(near_duplicates, subject): _processor_finding(
            near_duplicates, subject, near_duplicates.params(subject)
        )
        for subject in flagged
    }


def _bring_in_line(
    found: dict[str, dict[str, Any]], existing_rows: list[QuerySet], now: datetime.datetime, counts: dict
) -> list[int]:
    """Create, change and resolve the stored rows (``existing_rows``, querysets) against what the rules
    found about the same subjects; add to ``counts``, and return the ids of the rows found unchanged."""
    # The stored rows as plain tuples, their parameters as the stored JSON text (building 100,000 model
    # instances, or decoding 100,000 parameters, was most of a full refresh); instances are loaded only
    # for the rows that change.
    existing: dict[str, tuple[int, Any, tuple, int]] = {}
    for rows in existing_rows:
        # Whether a row is resolved, as 0 or 1: a date would be converted 440,000 times to be compared
        # with None (a column without a converter spares Django its per-row conversion loop).
        stored_rows = rows.annotate(
            params_text=Cast("params", models.TextField()),
            resolved=models.Case(
                models.When(resolved_at__isnull=True, then=models.Value(0)),
                default=models.Value(1),
                output_field=models.IntegerField(),
            ),
        ).values_list(
            "pk",
            "fingerprint",
            "resolved",
            "rank",
            *(_STORED_TEXT.get(name, name) for name in _COMPARED_FIELDS),
        )
        for pk, key, resolved, rank, *compared in stored_rows:
            existing[key] = (pk, resolved, tuple(compared), rank)
    created, updates, seen = [], {}, []
    # Only the columns some row changes are written: a rename changes labels, not the other ten.
    written = {"last_seen"}
    for key, fields in found.items():
        stored = existing.get(key)
        if stored is None:
            # Column values, not model instances: an import creates several findings a row.
            created.append({**fields, "fingerprint": key, "first_seen": now, "last_seen": now})
            continue
        pk, resolved, compared, _rank = stored
        differing = [] if compared == _compared(fields) else _differing(compared, fields)
        if not resolved and not differing:
            seen.append(pk)
            continue
        updates[pk] = fields
        written.update(differing)
        if resolved:
            written.update(_DECISION_FIELDS)
    resolved_keys = [key for key, stored in existing.items() if key not in found and not stored[1]]
    changed, resolved = [], []
    rows = _rows_by_pk([*updates, *(existing[key][0] for key in resolved_keys)])
    for pk, fields in updates.items():
        row = rows[pk]
        if row.resolved_at is not None:
            # The rule holds again: whatever was decided before was about a state that has gone.
            row.resolved_at = None
            row.state, row.state_by, row.state_at, row.state_reason = FindingState.OPEN, None, now, ""
        for name in _COMPARED_FIELDS:
            setattr(row, name, fields.get(name))
        row.last_seen = now
        changed.append(row)
    for key in resolved_keys:
        row = rows[existing[key][0]]
        row.resolved_at = row.state_at = row.last_seen = now
        row.state, row.state_by = FindingState.FIXED, None
        resolved.append(row)
    # At the driver's speed with their history rows.
    create_with_history(StoredFinding, created, now=now)
    for rows_written, names in ((changed, written), (resolved, {*_DECISION_FIELDS, "last_seen"})):
        if rows_written:
            _write_with_history(rows_written, sorted(name.removesuffix("_id") for name in names), now)
    _rewrite_stale_ranks(existing, found)
    counts["found"] += len(found)
    counts["created"] += len(created)
    counts["changed"] += len(changed)
    counts["resolved"] += len(resolved)
    return seen


def _processor_finding(rule: Rule, processor: Processor, params: dict[str, Any]) -> dict[str, Any]:
    return {
        **_rule_columns(rule),
        "params": params,
        "subject_label": processor.primary_name[:500],
        "operation_id": None,
        "service_id": None,
        "controller_id": None,
        "processor_id": processor.pk,
    }


# Ids per statement when a list of them is sent (SQLite allows 32,766 variables a statement).
ID_CHUNK = 10_000
# The parameters last: ``_compared`` encodes them after reading the others in one call.
_COMPARED_FIELDS = (
    "rule",
    "severity",
    "subject_label",
    "operation_id",
    "service_id",
    "controller_id",
    "processor_id",
    "params",
)
_PLAIN_COMPARED = itemgetter(*_COMPARED_FIELDS[:-1])


def _write_with_history(rows: list[StoredFinding], names: list[str], now: datetime.datetime) -> None:
    """Write these columns of the rows, with a history row each.

    Rows that take the same values (a renamed service relabels each of its operations' four or five
    findings alike; a resolution writes one state and time) are written by one ``UPDATE`` per set of
    values: ``bulk_update`` builds a ``CASE WHEN id = …`` per row and column, which was 19 of the 33 s
    of a service rename (9,000 findings) at 100,000 operations.
    """
    fields = [StoredFinding._meta.get_field(name) for name in names]
    groups: dict[tuple, list[int]] = {}
    values: dict[tuple, tuple] = {}
    for row in rows:
        written = tuple(getattr(row, field.attname) for field in fields)
        key = tuple(
            json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
            for value in written
        )
        groups.setdefault(key, []).append(row.pk)
        values.setdefault(key, written)
    if len(groups) * 2 > len(rows):
        history_bulk_update(StoredFinding, rows, names, batch_size=500, default_date=now)
        return
    for key, pks in groups.items():
        changes = {field.attname: value for field, value in zip(fields, values[key], strict=True)}
        for start in range(0, len(pks), ID_CHUNK):
            StoredFinding.objects.filter(pk__in=pks[start : start + ID_CHUNK]).update(**changes)
    # No column named: simple_history writes the history rows only.
    history_bulk_update(StoredFinding, rows, [], batch_size=500, default_date=now)


def _rewrite_stale_ranks(existing: dict[str, tuple[int, Any, tuple, int]], found: dict[str, dict]) -> None:
    """Give the stored rows read by a refresh the rank their rule has now (a rule moved in ``RULES``, or
    its severity changed): one ``UPDATE`` per rank, no history (the rank is derived, not recorded)."""
    rule_at, severity_at = _COMPARED_FIELDS.index("rule"), _COMPARED_FIELDS.index("severity")
    stale: dict[int, list[int]] = {}
    for key, (pk, _resolved, compared, rank) in existing.items():
        fields = found.get(key)
        expected = (
            fields["rank"] if fields is not None else finding_rank(compared[severity_at], compared[rule_at])
        )
        if rank != expected:
            stale.setdefault(expected, []).append(pk)
    for rank, pks in stale.items():
        for start in range(0, len(pks), ID_CHUNK):
            StoredFinding.objects.filter(pk__in=pks[start : start + ID_CHUNK]).update(rank=rank)


def _rows_by_pk(pks: list[int]) -> dict[int, StoredFinding]:
    rows: dict[int, StoredFinding] = {}
    for start in range(0, len(pks), ID_CHUNK):
        rows.update(StoredFinding.objects.in_bulk(pks[start : start + ID_CHUNK]))
    return rows


# The parameters are compared as the JSON text they are stored as (equal text, equal parameters).
_STORED_TEXT = {"params": "params_text"}


def _compared(fields: dict[str, Any]) -> tuple:
    # Most findings have no parameters: their stored text is "{}" on both databases.
    params = fields["params"]
    return (*_PLAIN_COMPARED(fields), json.dumps(params) if params else "{}")


def _differing(compared: tuple, fields: dict[str, Any]) -> list[str]:
    """The compared columns a stored row would change; parameters stored as other text (PostgreSQL's
    jsonb orders keys its own way) are decoded before they count as changed."""
    differing = []
    for name, stored in zip(_COMPARED_FIELDS, compared, strict=True):
        if name == "params":
            if stored != json.dumps(fields["params"]) and json.loads(stored or "null") != fields["params"]:
                differing.append(name)
        elif stored != fields.get(name):
            differing.append(name)
    return differing


# What a reopening or a resolution writes besides the compared columns.
_DECISION_FIELDS = ("state", "state_by", "state_at", "state_reason", "resolved_at")


def finding_message(finding: StoredFinding) -> str:
    """A stored finding's message in the active language."""
    rule = RULES_BY_CODE.get(finding.rule)
    return rule.message(finding.params or {}) if rule is not None else ""


def stored_findings_summary(queryset: QuerySet[StoredFinding]) -> dict[str, Any]:
    """How many findings the queryset holds, by severity and by rule, from one aggregate query.

    ``COUNT(*)`` grouped by (severity, rule) reads only the index on (state, severity, rule) when the
    queryset filters by state alone: linear in the findings counted (a B-tree does not count its
    entries), but no table row is read. The total is remembered on the queryset, so that a page of the
    same queryset (``stored_findings_ordered``) does not count it a second time.
    """
    by_severity = {severity.value: 0 for severity in Severity}
    by_rule = {rule.code: 0 for rule in RULES}
    counts = (
        _without_needless_distinct(queryset)
        .order_by()
        .values_list("severity", "rule")
        .annotate(count=models.Count("*"))
    )
    for severity, code, count in counts:
        by_severity[severity] = by_severity.get(severity, 0) + count
        by_rule[code] = by_rule.get(code, 0) + count
    total = sum(by_severity.values())
    queryset._stored_findings_total = total
    return {"total": total, **by_severity, "by_rule": by_rule}


# Query parameters that choose a page or a format, not which findings are counted.
NOT_COUNTED_PARAMETERS = frozenset({"page", "page_size", "format"})


def stored_findings_summary_cached(
    queryset: QuerySet[StoredFinding], figures: Any, data: Any = None
) -> dict[str, Any]:
    """``stored_findings_summary`` served from the register's cached figures (``figures``, a
    ``register_cache.RegisterFigures``: one reader at one revision), keyed by the filters asked
    (``data``, a QueryDict or dict; the page and format left out). Counting every open finding is a scan
    of the index on (state, severity, rule), 441,000 entries on a register of 100,000 operations; its
    result changes only with the register. The total is remembered on the queryset, as
    ``stored_findings_summary`` does, for a page of the same queryset."""
    asked = []
    if data is not None:
        lists = data.lists() if hasattr(data, "lists") else ((key, [value]) for key, value in data.items())
        asked = sorted(
            (key, sorted(str(value) for value in values))
            for key, values in lists
            if key not in NOT_COUNTED_PARAMETERS and any(str(value).strip() for value in values)
        )
    name = "findings-summary:" + json.dumps(asked, ensure_ascii=False)
    summary = figures.get(name, lambda: stored_findings_summary(queryset))
    queryset._stored_findings_total = summary["total"]
    return summary


def _without_needless_distinct(queryset: QuerySet[StoredFinding]) -> QuerySet[StoredFinding]:
    """The queryset without ``DISTINCT`` when it reads the findings table alone (a filter of several
    choices asks for it): rows of one table are distinct already, and ``DISTINCT`` over every column
    makes the database sort all of them instead of reading a page off an index."""
    if not queryset.query.distinct or queryset.query.distinct_fields or len(queryset.query.alias_map) > 1:
        return queryset
    queryset = queryset.all()
    queryset.query.distinct = False
    return queryset


def _restricted_to(where: Any, name: str) -> set | None:
    """The values of the findings' column ``name`` that these conditions (a ``WhereNode``) keep, when
    they say so plainly: ``name = x`` or ``name IN (...)`` among conditions that must all hold, or in
    each of alternatives (``name = x OR name = y``, as a filter of several choices writes it); else
    ``None`` (nothing is assumed)."""
    if where.negated or where.connector not in ("AND", "OR"):
        return None
    restrictions = [_restricted_by(child, name) for child in where.children]
    if where.connector == "OR":
        if not restrictions or any(values is None for values in restrictions):
            return None
        return set().union(*restrictions)
    kept = None
    for values in restrictions:
        if values is not None:
            kept = values if kept is None else kept & values
    return kept


def _restricted_by(condition: Any, name: str) -> set | None:
    if isinstance(condition, WhereNode):
        return _restricted_to(condition, name)
    target = getattr(getattr(condition, "lhs", None), "target", None)
    if getattr(target, "model", None) is not StoredFinding or target.name != name:
        return None
    lookup = getattr(condition, "lookup_name", None)
    if lookup == "exact" and isinstance(condition.rhs, str):
        return {condition.rhs}
    if lookup == "in" and isinstance(condition.rhs, (list, tuple, set, frozenset)):
        return set(condition.rhs)
    return None


def stored_findings_ordered(queryset: QuerySet[StoredFinding]) -> QuerySet[StoredFinding]:
    """Worst first, then in the rules' order, then by subject; with the recipient to link to.

    The stored rank is the severity's and the rule's position (``finding_rank``), so the order is
    (rank, subject label, id), which the index ``finding_state_rank`` (or ``finding_controller_rank``)
    holds: a page is read off it instead of sorting every open finding. The findings of one rule share
    their rank, so they are ordered by (rule, subject label, id), the index ``finding_state_rule_subject``.
    """
    total = getattr(queryset, "_stored_findings_total", None)
    queryset = _without_needless_distinct(queryset)
    rules = _restricted_to(queryset.query.where, "rule")
    order = ("rule" if rules is not None and len(rules) == 1 else "rank", "subject_label", "pk")
    severities = _restricted_to(queryset.query.where, "severity")
    if order[0] == "rank" and severities and severities <= set(SEVERITY_ORDER):
        # The rank's hundreds are the severity's position (``finding_rank``), so the same rows are the
        # ranks of these severities: a range of the index instead of a walk past the worse severities.
        positions = [SEVERITY_ORDER[severity] for severity in severities]
        queryset = queryset.filter(
            rank__gte=min(positions) * RANK_STEP, rank__lt=(max(positions) + 1) * RANK_STEP
        )
    counted = queryset.order_by()
    ordered = (
        queryset.annotate(recipient_id=Coalesce("processor_id", "operation__processor_id"))
        .select_related("state_by")
        .order_by(*order)
    )
    # The paginator counts the findings without the join to the operations the annotation needs (an
    # index-only count), or not at all when ``stored_findings_summary`` has counted the same queryset. A
    # bound method: ``Paginator.count`` calls ``count`` only when it takes no argument.
    ordered.count = MethodType(
        (lambda self: total) if total is not None else (lambda self: counted.count()), ordered
    )
    return ordered


def controllers_q(controllers: Any) -> Q:
    """Q on stored findings concerning these controllers (a queryset or list): their operations' and
    those of the processors their active operations send data to."""
    flows = Operation.objects.filter(service__controller__in=controllers, status=OperationStatus.ACTIVE)
    reached = Processor.objects.filter(selectors.processors_reached_q(flows)).values("pk")
    return Q(controller__in=controllers) | Q(controller__isnull=True, processor__in=reached)


def stored_findings_visible_to(user: Any, queryset: QuerySet[StoredFinding] | None = None) -> QuerySet:
    """The stored findings of the controllers the user may see (all of them for a superuser)."""
    queryset = StoredFinding.objects.all() if queryset is None else queryset
    if selectors.sees_every_controller(user):
        return queryset
    return queryset.filter(controllers_q(selectors.controllers_for(user).values("pk")))


def stored_findings_for_display(rows: Iterable[StoredFinding]) -> list[StoredFinding]:
    """The rows with their rule and message (in the active language) attached, for a template."""
    shown = list(rows)
    for row in shown:
        row.rule_info = RULES_BY_CODE.get(row.rule)
        row.message = finding_message(row)
    return shown


def stored_findings_of(
    user: Any,
    *,
    processor: Processor | None = None,
    operation: Operation | None = None,
    limit: int,
) -> tuple[list[StoredFinding], int]:
    """The open stored findings of a recipient (its own and those of the operations sending to it) or of
    one operation, worst first, as the user may see them: the first ``limit`` ready for display, and how
    many there are. Read off the stored findings (kept current by every write), never by running the
    rules for one page.

    A recipient's are two index lookups (its own findings, its operations' by their ids), not an OR with
    a subquery or a join, which the database answers by scanning every finding."""
    if operation is not None:
        subject = Q(operation=operation)
    elif processor is not None:
        operation_ids = list(Operation.objects.filter(processor=processor).values_list("pk", flat=True))
        subject = Q(processor=processor) | Q(operation_id__in=operation_ids)
    else:
        raise ValueError("stored_findings_of needs a processor or an operation")
    found = stored_findings_visible_to(user).filter(subject, state=FindingState.OPEN)
    shown = stored_findings_for_display(stored_findings_ordered(found)[:limit])
    return shown, (found.count() if len(shown) >= limit else len(shown))


def open_unless_asked(queryset: QuerySet[StoredFinding], data: Any) -> QuerySet[StoredFinding]:
    """The open findings, unless the query (``data``) asks for states: a DPO's list is what is left to do."""
    asked = data.getlist("state") if data is not None and hasattr(data, "getlist") else []
    return queryset if any(value.strip() for value in asked) else queryset.filter(state=FindingState.OPEN)
