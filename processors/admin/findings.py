"""The stored findings in the admin: read-only rows (the refresh writes them), filtered by the same
FindingFilterSet as the findings page and the API, with the DPO's decisions as actions."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from processors import services
from processors.admin.base import RegisterHistoryAdmin
from processors.admin.filters import filterset_list_filter
from processors.filters import FindingFilterSet
from processors.findings import (
    RULES,
    RULES_BY_CODE,
    finding_message,
    finding_rank,
    stored_findings_visible_to,
)
from processors.forms import FindingActionForm
from processors.models import Finding


def _decide(model_admin, request, queryset, decide, done_message: str) -> None:
    reason = request.POST.get("reason", "")
    done = 0
    for finding in queryset:
        try:
            decide(finding=finding, user=request.user, reason=reason)
        except ValidationError as error:
            model_admin.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        done += 1
    model_admin.message_user(request, done_message % {"count": done}, messages.SUCCESS)


@admin.action(description=_("Accept the selected findings (with the reason given)"), permissions=["change"])
def accept_findings(model_admin, request, queryset):
    """Accept each selected finding with the reason typed next to the action."""

    def decide(*, finding, user, reason):
        services.finding_accept(finding=finding, user=user, reason=reason)

    _decide(model_admin, request, queryset, decide, gettext("%(count)d findings accepted."))


@admin.action(description=_("Mark the selected findings fixed"), permissions=["change"])
def fix_findings(model_admin, request, queryset):
    """Mark each selected finding fixed (the reason, if any, is kept as a note)."""

    def decide(*, finding, user, reason):
        services.finding_fix(finding=finding, user=user, note=reason)

    _decide(model_admin, request, queryset, decide, gettext("%(count)d findings marked fixed."))


@admin.action(description=_("Reopen the selected findings"), permissions=["change"])
def reopen_findings(model_admin, request, queryset):
    """Put the selected findings back on the open list."""

    def decide(*, finding, user, reason):
        services.finding_reopen(finding=finding, user=user, note=reason)

    _decide(model_admin, request, queryset, decide, gettext("%(count)d findings reopened."))


@admin.register(Finding)
class FindingAdmin(RegisterHistoryAdmin):
    """What the rules found, kept current by the refresh; a DPO accepts (with a reason), fixes or reopens."""

    list_display = ("severity", "rule_title", "subject_label", "controller", "state", "last_seen")
    list_select_related = ("controller",)
    list_filter = (
        filterset_list_filter(FindingFilterSet, "state"),
        filterset_list_filter(FindingFilterSet, "severity"),
        filterset_list_filter(FindingFilterSet, "rule"),
        filterset_list_filter(FindingFilterSet, "controller"),
    )
    # The rule is searched by its title in either language (``get_search_results``), not as a column:
    # a ``LIKE`` on it made SQLite read every row of the register's findings behind the index it pages by.
    search_fields = ("subject_label",)
    actions = [accept_findings, fix_findings, reopen_findings]
    action_form = FindingActionForm
    list_per_page = 50
    # Read off the index finding_state_rank: by state, then worst first (the stored rank), then subject.
    ordering = ("state", "rank", "subject_label", "id")
    # The register's findings are not counted again on every page view (the filtered count still is).
    show_full_result_count = False
    readonly_fields = (
        "rule",
        "rule_title",
        "severity",
        "subject_label",
        "message",
        "operation",
        "processor",
        "controller",
        "state",
        "state_reason",
        "state_by",
        "state_at",
        "first_seen",
        "last_seen",
        "resolved_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return stored_findings_visible_to(request.user, super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        """Findings whose subject contains the words, or whose rule's code or title (Chinese or English)
        contains every word."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        codes = rules_matching(search_term)
        if codes:
            # The stored rank (derived from the rule) is named too: it is in the index the list is paged
            # by, so SQLite reads a row only when its rank matches (the rule alone made it read them all).
            ranks = {finding_rank(RULES_BY_CODE[code].severity, code) for code in codes}
            found = found | queryset.filter(rank__in=ranks, rule__in=codes)
        return found, may_have_duplicates

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("rule"))
    def rule_title(self, finding: Finding) -> str:
        rule = RULES_BY_CODE.get(finding.rule)
        return str(rule.title) if rule is not None else finding.rule

    @admin.display(description=_("message"))
    def message(self, finding: Finding) -> str:
        return finding_message(finding)


def rules_matching(search_term: str) -> list[str]:
    """The codes of the rules whose code or title, in either language, contains every word of the term."""
    words = search_term.casefold().split()
    if not words:
        return []
    codes = []
    for rule in RULES:
        texts = [rule.code.casefold()]
        for language in ("zh-hans", "en"):
            with translation.override(language):
                texts.append(str(rule.title).casefold())
        if all(any(word in text for text in texts) for word in words):
            codes.append(rule.code)
    return codes
