"""The iTrus demo register: controller, reference facts, the published table, classifications.

Every step compares before it writes, so loading again changes nothing (no row is saved, no
``updated_at`` moves). The data and the reasons for each classification are in fixtures/demo/itrus.json.
"""

import datetime
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from processors import selectors, services
from processors.models import Controller, Operation
from processors.spreadsheets.importer import import_register
from processors.text import normalize_key

DEMO_FILE = Path(settings.BASE_DIR) / "fixtures" / "demo" / "itrus.json"

# Keys of a classification block that are operation fields (the rest is documentation or selection).
OPERATION_FIELDS = ("relationship", "sharing_method", "legal_basis", "consent_type", "cross_border")


class DemoError(Exception):
    """The demo document or table could not be loaded; nothing was written."""


@transaction.atomic
def demo_load(file: Path = DEMO_FILE) -> list[str]:
    """Load (or bring up to date) the demo register; returns the lines of a human-readable report."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DemoError(_("Cannot read %(file)s: %(error)s") % {"file": file, "error": error}) from error
    register = data["register"]
    table = Path(settings.BASE_DIR) / register["file"]
    effective_from = (
        datetime.date.fromisoformat(register["effective_from"]) if register.get("effective_from") else None
    )
    lines = []
    controller, state = ensure_controller(data["controller"])
    lines.append(_("Controller %(code)s: %(counts)s.") % {"code": controller.code, "counts": _tally([state])})
    states = [ensure_processor(spec) for spec in data.get("processors", ())]
    lines.append(_("Reference processors: %(counts)s.") % {"counts": _tally(states)})
    report = import_register(
        table, controller=controller, file_name=table.name, effective_from=effective_from
    )
    lines.append(report.as_text())
    if not report.ok:
        raise DemoError("\n".join([*lines, _("The demo table did not import; nothing was loaded.")]))
    states = apply_classifications(controller, data.get("classifications", ()), effective_from)
    lines.append(_("Classified operations: %(counts)s.") % {"counts": _tally(states)})
    return lines


def _tally(states: list[str]) -> str:
    return _("%(created)s created, %(changed)s changed, %(unchanged)s unchanged") % {
        state: states.count(state) for state in ("created", "changed", "unchanged")
    }


def _current(instance: Any, name: str) -> Any:
    value = getattr(instance, name)
    return getattr(value, "code", value)  # CountryField values compare by code


def _changes(instance: Any, fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if _current(instance, name) != value}


def ensure_controller(spec: dict[str, Any]) -> tuple[Controller, str]:
    """The demo controller, created or brought in line with the document."""
    fields = {name: value for name, value in spec.items() if name != "code"}
    controller = Controller.objects.filter(code=spec["code"]).first()
    if controller is None:
        return services.controller_create(code=spec["code"], **fields), "created"
    changes = _changes(controller, fields)
    if not changes:
        return controller, "unchanged"
    return services.controller_update(controller=controller, **changes), "changed"


def ensure_processor(spec: dict[str, Any]) -> str:
    """Create a reference processor, or bring its facts and aliases in line with the document."""
    spec = dict(spec)
    aliases = spec.pop("aliases", [])
    names = [name for name in (spec.get("name_zh"), spec.get("name_en"), *aliases) if name]
    processor = next(filter(None, (selectors.processor_find(name) for name in names)), None)
    if processor is None:
        services.processor_create(aliases=aliases, **spec)
        return "created"
    changed = False
    changes = _changes(processor, spec)
    if changes:
        services.processor_update(processor=processor, **changes)
        changed = True
    known = {processor.name_key, *processor.aliases.values_list("key", flat=True)}
    for alias in aliases:
        if normalize_key(alias) not in known:
            services.processor_alias_create(processor=processor, text=alias)
            changed = True
    return "changed" if changed else "unchanged"


def apply_classifications(
    controller: Controller, blocks: list[dict[str, Any]], effective_from: datetime.date | None
) -> list[str]:
    """Set relationship, sharing method, legal basis and consent on the operations of the named services."""
    states = []
    for block in blocks:
        names = block["services"]
        found = set(controller.services.filter(name__in=names).values_list("name", flat=True))
        missing = [name for name in names if name not in found]
        if missing:
            raise DemoError(
                _("The demo classifies unknown services: %(names)s") % {"names": ", ".join(missing)}
            )
        fields = {name: block[name] for name in OPERATION_FIELDS if name in block}
        operations = Operation.objects.filter(
            service__controller=controller, service__name__in=names, effective_from=effective_from
        )
        for operation in operations:
            changes = _changes(operation, fields)
            if changes:
                services.operation_update(operation=operation, **changes)
            states.append("changed" if changes else "unchanged")
    return states
