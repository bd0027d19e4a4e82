"""Every form of the register, for the browser pages and the admin alike.

The site and the admin show the same forms in their own look: the import upload and its header-mapping
step, the findings filters, the deletion notice, publishing a version; and the admin's model forms,
which report clashes of derived match keys as form errors rather than database errors.
"""

import hashlib
import re
from typing import Any

from django import forms
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.widgets import AdminDateWidget, AdminTextareaWidget
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from processors import selectors
from processors.findings import Severity
from processors.history import stored_username
from processors.models import Controller, ControllerRole, DataItem
from processors.spreadsheets import uploads
from processors.spreadsheets.cells import LIST_SEPARATORS
from processors.spreadsheets.readers import ImportLimits
from processors.spreadsheets.report import validation_messages
from processors.spreadsheets.uploads import header_choices
from processors.text import normalize_key

# --- Import ---------------------------------------------------------------------------------------

# The controller choice that stands for "a new controller, named below" (not a valid slug, so no code).
NEW_CONTROLLER = "+new"
# Who may create a controller from the upload step: superusers and holders of this permission
# (docs/decisions.md, "A controller can be created in the upload step").
ADD_CONTROLLER_PERMISSION = "processors.add_controller"


def may_create_controller(user: Any) -> bool:
    """Whether the user may create a controller while importing (and so becomes its admin)."""
    return bool(user is not None and user.is_active and user.has_perm(ADD_CONTROLLER_PERMISSION))


class UploadForm(forms.Form):
    """A disclosure table to import: a file or pasted cells, for one controller (or a new one)."""

    controller = forms.ChoiceField(
        label=_("controller"),
        help_text=_("The personal-information handler whose table this is."),
        # Django's own wording (and translation) of a model choice: another controller's code is not
        # echoed back, so a code cannot be probed.
        error_messages={
            "invalid_choice": _("Select a valid choice. That choice is not one of the available choices.")
        },
    )
    new_code = forms.SlugField(
        label=_("code of the new controller"),
        max_length=60,
        required=False,
        help_text=_("Letters, digits and hyphens, e.g. acme-app; it appears in addresses."),
    )
    new_name_zh = forms.CharField(label=_("Chinese name"), max_length=200, required=False)
    new_name_en = forms.CharField(label=_("English name"), max_length=200, required=False)
    file = forms.FileField(
        label=_("file"),
        required=False,
        help_text=_(
            "An .xlsx workbook, a .csv / .tsv file (UTF-8, UTF-16 or GB18030), or a document with the "
            "table in it: a saved web page (.html), Markdown, Word (.docx) or a policy text (.txt)."
        ),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".xlsx,.xlsm,.csv,.tsv,.txt,.html,.htm,.md,.markdown,.docx"}
        ),
    )
    text = forms.CharField(
        label=_("or paste the table"),
        required=False,
        strip=False,
        help_text=_("Copy the cells from a spreadsheet or a web page, header row included."),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )

    new_fields = ("new_code", "new_name_zh", "new_name_en")

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the controllers the user may import into (an editor's); another one is an unknown choice.
        editable = (
            Controller.objects.all()
            if user is None
            else selectors.controllers_for(user, role=ControllerRole.EDITOR)
        )
        self.controllers = {controller.code: controller for controller in editable.order_by("code")}
        self.offers_new = may_create_controller(user)
        choices = [(code, str(controller)) for code, controller in self.controllers.items()]
        if self.offers_new:
            choices.append((NEW_CONTROLLER, _("+ a new controller…")))
        if len(choices) != 1:
            choices.insert(0, ("", "---------"))
        field = self.fields["controller"]
        field.choices = choices
        field.initial = choices[0][0] if len(choices) == 1 else None
        if not self.offers_new:
            for name in self.new_fields:
                del self.fields[name]

    @property
    def creates_controller(self) -> bool:
        return self.offers_new and self.data.get(self.add_prefix("controller")) == NEW_CONTROLLER

    def clean_controller(self) -> Controller | str:
        code = self.cleaned_data["controller"]
        return NEW_CONTROLLER if code == NEW_CONTROLLER else self.controllers[code]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        has_file = bool(cleaned.get("file"))
        has_text = bool((cleaned.get("text") or "").strip())
        if has_file == has_text:
            raise forms.ValidationError(_("Choose a file or paste the table (one of the two)."))
        if cleaned.get("controller") == NEW_CONTROLLER:
            self._clean_new_controller(cleaned)
        return cleaned

    def _clean_new_controller(self, cleaned: dict[str, Any]) -> None:
        code = cleaned.get("new_code") or ""
        names = {"name_zh": cleaned.get("new_name_zh") or "", "name_en": cleaned.get("new_name_en") or ""}
        if "new_code" not in self.errors and not code:
            self.add_error("new_code", _("Give the new controller a code."))
        if not any(names.values()):
            self.add_error("new_name_zh", _("Give the new controller a Chinese or an English name."))
        if self.errors:
            return
        # The model's own rules (slug, one line, a free code) say whether it can be created on confirm.
        try:
            Controller(code=code, **names).full_clean()
        except ValidationError as error:
            for field, messages in validation_messages(error).items():
                target = {"code": "new_code", "name_zh": "new_name_zh", "name_en": "new_name_en"}.get(field)
                for message in messages:
                    self.add_error(target, message)

    def store(self, user: Any) -> uploads.Upload:
        """Keep the valid upload for its preview; raises ``uploads.UploadError``."""
        file = self.cleaned_data["file"]
        controller = self.cleaned_data["controller"]
        new_controller = None
        if controller == NEW_CONTROLLER:
            new_controller = {
                "code": self.cleaned_data["new_code"],
                "name_zh": self.cleaned_data["new_name_zh"],
                "name_en": self.cleaned_data["new_name_en"],
            }
            # Not saved: it is created when the import is confirmed (processors.import_flow).
            controller = Controller(**new_controller)
        return uploads.upload_store(
            user=user,
            controller=controller,
            new_controller=new_controller,
            file_name=file.name if file else "",
            # One byte past the import limit is enough for the preview to say the file is too big.
            data=file.read(ImportLimits.from_settings().max_bytes + 1) if file else None,
            text=None if file else self.cleaned_data["text"],
        )


class HeaderMapForm(forms.Form):
    """One choice per header the column spec does not know: a field of the table, or "ignore".

    A header whose column's content suggests a field (``ImportReport.header_proposals``) has that
    field preselected, unless the person already chose; ``proposed`` says which ones, for the page.
    """

    def __init__(
        self,
        *args: Any,
        headers: list[str],
        initial: dict[str, str] | None = None,
        proposals: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = [("", _("— choose —")), *header_choices()]
        labels = dict(choices)
        chosen, proposals = initial or {}, proposals or {}
        self.proposed: dict[str, str] = {}
        for index, header in enumerate(headers):
            name = f"header_{index}"
            proposal = proposals.get(header, "") if header not in chosen else ""
            if proposal and proposal in labels:
                self.proposed[name] = str(labels[proposal])
            self.fields[name] = forms.ChoiceField(
                label=header, choices=choices, initial=chosen.get(header) or proposal
            )

    def header_map(self) -> dict[str, str]:
        return {header: self.cleaned_data[f"header_{index}"] for index, header in enumerate(self.headers)}


class TableChoiceForm(forms.Form):
    """Which of a document's tables to import (``ImportReport.tables``, by index)."""

    table = forms.TypedChoiceField(label=_("table"), coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args: Any, tables: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["table"].choices = [(table["index"], table["title"] or "—") for table in tables]


class TableVersionForm(forms.Form):
    """Whether rows that match operations of another date are those operations, or a new version."""

    UPDATE = "update"
    NEW_VERSION = "new"

    version = forms.ChoiceField(
        label=_("Is this a new version of the table?"),
        choices=[
            (UPDATE, _("No: it is the table already in the register; update the operations it matches")),
            (NEW_VERSION, _("Yes: a new version, in effect from the date below")),
        ],
        widget=forms.RadioSelect,
    )
    effective_from = forms.DateField(
        label=_("in effect from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("version") == self.NEW_VERSION and not cleaned.get("effective_from"):
            self.add_error("effective_from", _("Give the date the new version takes effect."))
        if cleaned.get("version") == self.UPDATE:
            cleaned["effective_from"] = None
        return cleaned


class DefaultServiceForm(forms.Form):
    """The service a table without a service column is imported into (a sub-processor list's rows)."""

    default_service = forms.CharField(
        label=_("Service for the rows"),
        max_length=200,
        help_text=_("The table has no service column; every row becomes an operation of this service."),
    )

    def clean_default_service(self) -> str:
        # The service's own name rules (one line), so the confirm cannot fail on a name the preview took.
        name = " ".join(self.cleaned_data["default_service"].split())
        if not name:
            raise ValidationError(_("Give the service a name."))
        return name


# --- Findings and deletion notices ----------------------------------------------------------------

# Several categories in one field, split on every separator people type in Chinese and English lists:
# commas of either width (, ，), the enumeration comma 、, semicolons of either width (; ；) and line
# breaks. The site and the admin once split differently; this union is the one rule for both, and it
# is the set a list cell of an imported table is split on, so a list pasted from a table works as is.
CATEGORY_SEPARATORS = re.compile("[" + re.escape("".join(sorted(LIST_SEPARATORS))) + "]+")


def split_categories(text: str) -> list[str]:
    """The category names in a typed list, stripped, blanks and repeats dropped, in their order."""
    values = (value.strip() for value in CATEGORY_SEPARATORS.split(text or ""))
    return list(dict.fromkeys(value for value in values if value))


class DeletionNoticeForm(forms.Form):
    """The categories to delete (names, aliases or codes), and optionally the controller whose data it is."""

    categories = forms.CharField(
        label=_("data categories"),
        max_length=1000,
        help_text=_("Names, aliases or codes, separated by 、 , ; or new lines — e.g. 手机号、身份证号."),
    )
    controller = forms.ModelChoiceField(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("any controller"),
    )
    active_only = forms.BooleanField(
        label=_("only flows still active"),
        required=False,
        help_text=_("Leave unticked to include recipients of retired flows, which may still hold the data."),
    )

    # The notice itself is not computed here: the view calls ``processors.notices`` with the cleaned
    # values, so a form stays a translation of the request and the notice has one caller per page.
    def clean_categories(self) -> list[str]:
        values = split_categories(self.cleaned_data["categories"])
        if not values:
            raise forms.ValidationError(_("Name at least one data category."))
        return values


class FindingsFilterForm(forms.Form):
    """The findings page's filters: a severity and a controller, both optional."""

    severity = forms.ChoiceField(
        label=_("severity"), choices=[("", _("any severity")), *Severity.choices], required=False
    )
    controller = forms.ModelChoiceField(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("any controller"),
    )


# --- Published versions ---------------------------------------------------------------------------


class PublishVersionForm(forms.Form):
    """A version of one controller's table to publish (a page of the admin, hence its widgets)."""

    controller = forms.ModelChoiceField(
        label=_("controller"), queryset=Controller.objects.order_by("code"), to_field_name="code"
    )
    label = forms.CharField(label=_("version label"), max_length=60)
    updated_on = forms.DateField(label=_("version update date"), widget=AdminDateWidget)
    effective_on = forms.DateField(label=_("version effective date"), widget=AdminDateWidget)
    notes = forms.CharField(label=_("notes"), required=False, widget=AdminTextareaWidget(attrs={"rows": 3}))
    override = forms.BooleanField(label=_("Publish despite the blocking problems"), required=False)
    override_reason = forms.CharField(
        label=_("Reason for publishing anyway"),
        required=False,
        widget=AdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("Kept on the version, with the problems it overrides."),
    )

    def __init__(self, *args, controllers: QuerySet[Controller] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if controllers is not None:
            self.fields["controller"].queryset = controllers.order_by("code")
        # With one controller to choose from there is nothing to choose: no "---------" first.
        only = list(self.fields["controller"].queryset[:2])
        if len(only) == 1:
            self.fields["controller"].empty_label = None
            self.fields["controller"].initial = only[0].code

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("override") and not (cleaned.get("override_reason") or "").strip():
            self.add_error("override_reason", _("Write why the version is published despite its problems."))
        if not cleaned.get("override"):
            cleaned["override_reason"] = ""
        return cleaned


class SitePublishVersionForm(PublishVersionForm):
    """The same form on the site's publish page, with the browser's own date and text widgets."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("updated_on", "effective_on"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        for name in ("notes", "override_reason"):
            self.fields[name].widget = forms.Textarea(attrs={"rows": 3})


class WithdrawVersionForm(forms.Form):
    """Why a published version is withdrawn (kept on it)."""

    reason = forms.CharField(label=_("Reason for withdrawal"), widget=forms.Textarea(attrs={"rows": 3}))


# --- Admin model forms ----------------------------------------------------------------------------


class DerivedKeyUniqueForm(forms.ModelForm):
    """Reports a clash of a derived, unique match key as a form error on the field it comes from.

    Keys are computed in ``Model.clean()`` and are not form fields, so Django's own unique check skips
    them and a duplicate would only surface as an IntegrityError.
    """

    key_field = "key"
    source_fields: tuple[str, ...] = ("text",)

    def clean(self):
        cleaned = super().clean()
        source = next((name for name in self.source_fields if cleaned.get(name)), None)
        if source is None:
            return cleaned
        key = normalize_key(cleaned[source])
        clash = self._meta.model._default_manager.filter(**{self.key_field: key}).exclude(pk=self.instance.pk)
        if clash.exists():
            self.add_error(source, _("“%(text)s” is already registered.") % {"text": cleaned[source]})
        return cleaned


class VersionCheckedForm(forms.ModelForm):
    """A change form that carries the version it was opened at and refuses a save over a newer one.

    The refusal names who saved and when (the newest history row) and, for each field both changed, shows
    their value beside yours; reopening the form shows the new state, so nobody reverts it unseen.
    """

    opened_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["opened_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        opened = cleaned.get("opened_version")
        if self.instance.pk is not None and opened is not None and opened != self.instance.version:
            self.add_stale_errors(opened)
        return cleaned

    def add_stale_errors(self, opened: int) -> None:
        """The form error for a save over a version newer than ``opened``, with both values per field."""
        history = self.instance.history.order_by("-history_date", "-history_id")
        newest = history.first()
        when = date_format(localtime(newest.history_date), "DATETIME_FORMAT") if newest else "?"
        self.add_error(
            None,
            _(
                "Changed by %(user)s at %(time)s since you opened it; nothing was saved. Reopen the form "
                "to see the new values."
            )
            % {"user": (newest and stored_username(newest)) or _("someone"), "time": when},
        )
        seen = history.filter(version=opened).first()
        for name in self.changed_data:
            try:
                field = self.instance._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.concrete or field.many_to_many or name not in self.cleaned_data:
                continue
            theirs, yours = getattr(self.instance, field.attname), self.cleaned_data[name]
            if seen is not None:
                before = getattr(seen, field.attname)
                if _plain(before) in (_plain(theirs), _plain(yours)):
                    continue  # only one of the two changed it
            shown = getattr(self.instance, name)
            self.add_error(
                name,
                _("Changed meanwhile to “%(theirs)s”; yours: “%(yours)s”.")
                % {"theirs": "" if shown is None else shown, "yours": "" if yours is None else yours},
            )

    def changed_fields(self) -> dict[str, Any]:
        """The model fields this save changes, with their new values, for the update service."""
        names = {field.name for field in self.instance._meta.concrete_fields if not field.primary_key}
        return {name: getattr(self.instance, name) for name in self.changed_data if name in names}


def _plain(value: Any) -> str:
    # Comparable across a model instance, its id, a Country and a code, None and "".
    value = getattr(value, "pk", value)
    return "" if value is None else str(value)


class ProcessorForm(VersionCheckedForm, DerivedKeyUniqueForm):
    key_field = "name_key"
    source_fields = ("name_zh", "name_en")


def items_text_token(text: str) -> str:
    """A short fingerprint of a typed items text, so a confirmation names exactly the text it saw."""
    # Browsers send a textarea's line breaks as CRLF; the same text must give the same token.
    normal = (text or "").replace("\r\n", "\n").strip()
    return hashlib.sha256(normal.encode()).hexdigest()[:20]


class OperationForm(VersionCheckedForm):
    """An operation's change form: a typed "data items as published" text is shown split and mapped
    (the admin's "items as they will be recorded") and saved only once the user has seen that.

    The first save that brings a new or changed text stops with the items listed for review; the hidden
    ``items_confirmed`` then carries the text's token, and saving again records them. The same text
    needs no second look, so a save that leaves the text alone is never held up.
    """

    items_confirmed = forms.CharField(widget=forms.HiddenInput, required=False)
    # Set when the save stopped only to show the items; the page then words it as a step, not a mistake.
    items_pending = False

    def items_text_changed(self) -> bool:
        """Whether this save brings a typed text the items will be recorded from."""
        text = (self.cleaned_data.get("data_items_text") or "").strip()
        if self.instance.pk is None:
            return bool(text)
        return "data_items_text" in self.changed_data

    def clean(self):
        cleaned = super().clean()
        if "data_items_text" in self.fields and self.items_text_changed():
            token = items_text_token(cleaned.get("data_items_text") or "")
            if cleaned.get("items_confirmed") != token:
                self.items_pending = True
                self.add_error(
                    None,
                    _(
                        "Check the data items below as they will be recorded (split and mapped as an "
                        "import would), then save again to record them."
                    ),
                )
                # The redisplayed form confirms what it shows: the same text saved again is recorded.
                data = self.data.copy()
                data[self.add_prefix("items_confirmed")] = token
                self.data = data
        return cleaned


class AliasInlineFormSet(BaseInlineFormSet):
    """Two rows of one formset must not fold to the same key either."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            if form in self.deleted_forms or not form.cleaned_data.get("text"):
                continue
            key = normalize_key(form.cleaned_data["text"])
            if key in seen:
                form.add_error("text", _("This alias appears twice."))
            seen.add(key)


class DataItemForm(forms.ModelForm):
    """A category chosen or changed by hand is a manual match; clearing it leaves the item unmapped."""

    class Meta:
        model = DataItem
        fields = ["operation", "position", "text", "category"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An item stays where it was published; disabled (not read-only) fields still take part in
        # the model's unique-constraint validation.
        if self.instance.pk is not None:
            for name in ("operation", "position"):
                if name in self.fields:
                    self.fields[name].disabled = True

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None or "category" in self.changed_data:
            self.instance.match = DataItem.Match.MANUAL if cleaned.get("category") else ""
        return cleaned


class DataItemInlineFormSet(BaseInlineFormSet):
    """The rows of one composite item share a position, so each may carry a category only once."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            category = form.cleaned_data.get("category")
            if form in self.deleted_forms or form.instance.pk is None or category is None:
                continue
            # A row the user may only view is not posted back: its category is the stored id.
            key = (form.instance.position, getattr(category, "pk", category))
            if key in seen:
                form.add_error("category", _("This item already maps to this category."))
            seen.add(key)


class FindingDecisionForm(forms.Form):
    """A DPO's decision on one stored finding: accept (with a reason), mark fixed, or reopen."""

    ACTIONS = (("accept", _("accept")), ("fix", _("mark fixed")), ("reopen", _("reopen")))

    finding = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    action = forms.ChoiceField(choices=ACTIONS, widget=forms.HiddenInput)
    reason = forms.CharField(label=_("reason"), required=False, max_length=2000, widget=forms.Textarea)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("action") == "accept" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", _("Say why the finding is accepted."))
        return cleaned


class FindingActionForm(ActionForm):
    """The admin findings changelist's action bar, with the reason an acceptance needs."""

    reason = forms.CharField(label=_("reason"), required=False, max_length=2000)


class ProcessorMergeForm(forms.Form):
    """The admin's "merge into one" step: which of the selected processors survives."""

    survivor = forms.ModelChoiceField(
        label=_("surviving processor"), queryset=None, widget=forms.RadioSelect, empty_label=None
    )

    def __init__(self, *args: Any, processors: QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["survivor"].queryset = processors
