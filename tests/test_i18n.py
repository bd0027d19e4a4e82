"""The register speaks Simplified Chinese and English: a complete catalogue and a switch in the admin."""

import gettext
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from processors.models import Operation, Processor, Relationship
from tests.builders import make_operation

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")


def po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: flags, msgid and every msgstr, with continuation lines joined."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry = {"flags": "", "msgid": None, "msgstr": []}
        current = None
        for line in block.strip().splitlines():
            if line.startswith("#,"):
                entry["flags"] += line
            elif line.startswith("#"):
                continue
            elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line):
                current = match.group(1)
                if current.startswith("msgstr"):
                    entry["msgstr"].append(json.loads(match.group(2)))
                else:
                    entry[current] = json.loads(match.group(2))
            elif line.startswith('"') and current:
                if current.startswith("msgstr"):
                    entry["msgstr"][-1] += json.loads(line)
                else:
                    entry[current] += json.loads(line)
        if entry["msgid"] is not None:
            entries.append(entry)
    return entries


def messages() -> list[dict]:
    return [entry for entry in po_entries(CATALOGUE) if entry["msgid"]]


def test_the_chinese_catalogue_has_messages():
    assert len(messages()) > 100


def test_every_message_is_translated():
    untranslated = [entry["msgid"] for entry in messages() if not all(entry["msgstr"])]

    assert untranslated == []


def test_no_translation_is_fuzzy():
    fuzzy = [entry["msgid"] for entry in po_entries(CATALOGUE) if "fuzzy" in entry["flags"]]

    assert fuzzy == []


def test_translations_keep_their_placeholders():
    def placeholders(text: str) -> set[str]:
        return set(re.findall(r"%\(\w+\)[sd]", text))

    broken = [
        entry["msgid"]
        for entry in messages()
        if any(placeholders(text) != placeholders(entry["msgid"]) for text in entry["msgstr"])
    ]

    assert broken == []


def test_the_compiled_catalogue_matches_the_po_file():
    with COMPILED.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)

    stale = [
        entry["msgid"]
        for entry in messages()
        if "msgid_plural" not in entry and compiled.gettext(entry["msgid"]) != entry["msgstr"][0]
    ]
    assert stale == []


@pytest.mark.parametrize(
    ("language", "operation", "processor", "entrusted"),
    [
        ("zh-hans", "处理活动", "接收方", "委托处理（个保法第21条）"),
        ("en", "processing operation", "processor", "entrusted processing (PIPL Art. 21)"),
    ],
)
def test_names_and_choice_labels_follow_the_active_language(language, operation, processor, entrusted):
    with translation.override(language):
        assert str(Operation._meta.verbose_name) == operation
        assert str(Processor._meta.verbose_name) == processor
        assert str(Relationship.ENTRUSTED.label) == entrusted


# --- The admin ------------------------------------------------------------------------------------


@pytest.fixture
def operation(db):
    return make_operation(data_items=["姓名", "身份证号"], relationship=Relationship.ENTRUSTED)


def operation_changelist(client, **headers) -> str:
    response = client.get(reverse("admin:processors_operation_changelist"), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_operation_changelist_is_in_chinese_for_a_chinese_browser(admin_client, operation):
    content = operation_changelist(admin_client, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert "处理活动" in content
    assert "个人信息类别" in content
    assert "委托处理（个保法第21条）" in content


def test_the_operation_changelist_is_in_english_for_an_english_browser(admin_client, operation):
    content = operation_changelist(admin_client, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    assert "processing operations" in content
    assert "Data categories" in content
    assert "entrusted processing (PIPL Art. 21)" in content


def test_the_language_cookie_wins_over_the_browser(admin_client, operation):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    content = operation_changelist(admin_client, HTTP_ACCEPT_LANGUAGE="en")

    assert "处理活动" in content


def test_the_admin_header_offers_both_languages(admin_client, operation):
    content = operation_changelist(admin_client)

    assert f'action="{reverse("set_language")}"' in content
    assert 'value="zh-hans"' in content and 'value="en"' in content
    assert "csrfmiddlewaretoken" in content


def test_switching_to_english_in_the_header_turns_the_admin_english(admin_client, operation):
    url = reverse("admin:processors_operation_changelist")

    response = admin_client.post(reverse("set_language"), {"language": "en", "next": url}, follow=True)

    assert response.redirect_chain[-1][0] == url
    assert "processing operations" in response.content.decode()


def test_the_site_header_is_bilingual(admin_client, operation):
    for language in ("zh-hans", "en"):
        content = operation_changelist(admin_client, HTTP_ACCEPT_LANGUAGE=language)

        assert "Processor Registry" in content and "登记册" in content
