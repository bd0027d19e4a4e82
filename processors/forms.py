"""Forms of the browser pages: the import upload, the header-mapping step, findings and deletion notices."""

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from processors.findings import Severity
from processors.models import Controller
from processors.spreadsheets import uploads
from processors.spreadsheets.readers import ImportLimits
from processors.spreadsheets.uploads import header_choices


class UploadForm(forms.Form):
    """A disclosure table to import: a file or pasted cells, for one controller."""

    controller = forms.ModelChoiceField(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        help_text=_("The personal-information handler whose table this is."),
    )
    file = forms.FileField(
        label=_("file"),
        required=False,
        help_text=_("An .xlsx workbook, or a .csv / .tsv file (UTF-8, UTF-16 or GB18030)."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.xlsm,.csv,.tsv,.txt"}),
    )
    text = forms.CharField(
        label=_("or paste the table"),
        required=False,
        strip=False,
        help_text=_("Copy the cells from a spreadsheet or a web page, header row included."),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        controllers = list(self.fields["controller"].queryset[:2])
        if len(controllers) == 1:
            self.fields["controller"].initial = controllers[0].code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        has_file = bool(cleaned.get("file"))
        has_text = bool((cleaned.get("text") or "").strip())
        if has_file == has_text:
            raise forms.ValidationError(_("Choose a file or paste the table (one of the two)."))
        return cleaned

    def store(self, user: Any) -> uploads.Upload:
        """Keep the valid upload for its preview; raises ``uploads.UploadError``."""
        file = self.cleaned_data["file"]
        return uploads.upload_store(
            user=user,
            controller=self.cleaned_data["controller"],
            file_name=file.name if file else "",
            # One byte past the import limit is enough for the preview to say the file is too big.
            data=file.read(ImportLimits.from_settings().max_bytes + 1) if file else None,
            text=None if file else self.cleaned_data["text"],
        )


class HeaderMapForm(forms.Form):
    """One choice per header the column spec does not know: a field of the table, or "ignore"."""

    def __init__(self, *args: Any, headers: list[str], initial: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = [("", _("— choose —")), *header_choices()]
        for index, header in enumerate(headers):
            self.fields[f"header_{index}"] = forms.ChoiceField(
                label=header, choices=choices, initial=(initial or {}).get(header, "")
            )

    def header_map(self) -> dict[str, str]:
        return {header: self.cleaned_data[f"header_{index}"] for index, header in enumerate(self.headers)}


# Several categories in one field: the separators people type in Chinese and English lists.
CATEGORY_SEPARATORS = re.compile(r"[\n\r,，、;；]+")


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

    def clean_categories(self) -> list[str]:
        values = [value.strip() for value in CATEGORY_SEPARATORS.split(self.cleaned_data["categories"])]
        values = list(dict.fromkeys(value for value in values if value))
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
