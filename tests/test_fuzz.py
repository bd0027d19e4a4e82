"""Hostile input never makes a 500: every URL pattern, every form and every API write, as three users.

The walk takes every routed URL (site, admin, API) with its path parameters filled from real objects,
and sends hostile values — NUL and other C0/C1 control characters, lone surrogates and broken UTF-8 in
percent-encoding, bidirectional overrides, full-width characters, 10,000-character strings, path
traversal, formula triggers — in query strings, in path parameters, in every field of every form a page
offers (posted with the page's own CSRF token, the client enforcing CSRF), and in every field of every
API write the OpenAPI schema lists. Anonymous, as an editor of one controller, and as a superuser. No
answer may be a 5xx, and an error under /api/v1/ must be the API's JSON error shape.

The deterministic walk gives every hostile value to every field in turn; hypothesis then draws
combinations of them (and random text around them) for the most exposed doors. Bounded so that the
file runs in well under two minutes on PostgreSQL.
"""

import json
import re
from urllib.parse import quote_from_bytes, urljoin, urlsplit

import lxml.html
import pytest
import yaml
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from processors import services
from processors.disclosure.page import version_key
from processors.models import ControllerRole, ImportRecord, Operation
from processors.spreadsheets import uploads
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

# As bytes, so that a value can be what no str encodes: broken UTF-8 and lone surrogates.
HOSTILE: tuple[bytes, ...] = (
    b"\x00",
    b"a\x00b",
    b"\x01\x02\x07\x08\x0b\x0c\x1b\x1f",
    b"\x7f",
    "\u0080\u0085\u009b\u009f".encode(),  # C1 controls
    "\ud800".encode("utf-8", "surrogatepass"),  # a lone surrogate
    "x\udfff".encode("utf-8", "surrogatepass"),
    b"\xff\xfe",  # no UTF-8 at all
    b"\xc0\x80",  # an overlong NUL
    b"\xe2\x82",  # a sequence cut short
    "evil\u202etxt.exe".encode(),  # right-to-left override
    "\u2066\u200f\u061c".encode(),
    "＝１＋１".encode(),  # full-width formula trigger
    "＠SUM(A1)".encode(),
    b"=cmd|' /C calc'!A0",
    b"+1",
    b"-1",
    b"@x",
    b"\t=1",
    b'\r\n=HYPERLINK("x")',
    b"\n=1",
    b"A" * 10_000,
    "好".encode() * 10_000,
    b"../../../../etc/passwd",
    b"..%2f..%2fetc%2fpasswd",
    b"..\\..\\windows\\win.ini",
    b"%00",
    b"%",
    b"<script>alert(1)</script>",
    b"' OR 1=1 --",
    b"{{7*7}}",
    b"99999999999999999999999999",
    b"-99999999",
    b"1e309",
    b"NaN",
    b"",
    b" ",
    "\ufeff\uffff".encode(),
    "😀".encode() * 100,
)
QUERY_NAMES = (
    "q", "search", "category", "receives", "controller", "processor", "purpose", "service", "status",
    "country", "relationship", "sensitive", "cross_border", "page", "page_size", "p", "o", "ordering",
    "format", "lang", "against", "term", "next", "since", "until", "shape", "categories", "code",
)  # fmt: skip
USERS = ("anonymous", "member", "superuser")
BROWSER_PAGES = ("/api/v1/auth/", "/api/v1/docs/")


def encoded(value: bytes) -> str:
    return quote_from_bytes(value, safe="")


def form_body(fields: list[tuple[str, bytes]]) -> str:
    return "&".join(f"{encoded(name.encode())}={encoded(value)}" for name, value in fields)


class Rotation:
    """Hands out the hostile values in turn, so that every one reaches every kind of field."""

    def __init__(self, start: int = 0) -> None:
        self.position = start

    def next(self) -> bytes:
        self.position += 1
        return HOSTILE[self.position % len(HOSTILE)]


# --- The register and the users -------------------------------------------------------------------


@pytest.fixture
def register(admin_user, tmp_path, settings):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path)
    controller = make_controller(code="alphaco", name_en="Alpha")
    service = make_service(controller, name="短信服务")
    operation = make_operation(service=service, processor=make_processor(name_en="Sms Co"))
    record = ImportRecord.objects.create(
        controller=controller, file_name="a.xlsx", sha256="0" * 64, result="imported"
    )
    version = services.version_publish(
        controller=controller,
        label="v1",
        updated_on="2025-01-01",
        effective_on="2025-01-01",
        notes="",
        user=admin_user,
    )
    upload = uploads.upload_store(user=admin_user, controller=controller, text="a\tb\n1\t2\n")
    return {
        "controller": controller,
        "service": service,
        "operation": operation,
        "item": operation.data_items.first(),
        "record": record,
        "version": version,
        "token": upload.token,
    }


def client_for(kind: str, django_user_model, admin_user, register) -> Client:
    # A 500 is an answer to collect, not an exception that ends the walk.
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if kind == "superuser":
        client.force_login(admin_user)
    elif kind == "member":
        user = django_user_model.objects.create_user("member", password="member-password", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="processors"))
        make_member(user, register["controller"], role=ControllerRole.PUBLISHER)
        client.force_login(user)
    return client


# --- The URLs -------------------------------------------------------------------------------------


def url_templates(patterns=None, prefix: str = ""):
    """Every routed URL as a template with {name} parameters, and the names whose values are free text."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        regex = entry.pattern.__class__.__name__ == "RegexPattern"
        text = str(entry.pattern.regex.pattern if regex else entry.pattern)
        if isinstance(entry, URLResolver):
            yield from url_templates(entry.url_patterns, prefix + text)
        elif isinstance(entry, URLPattern):
            yield _template(prefix + text)


def _template(raw: str) -> tuple[str, set[str]]:
    free = set(re.findall(r"<(?:str|slug|path):(\w+)>", raw)) | set(re.findall(r"\(\?P<(\w+)>\.", raw))
    path = raw.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: "{" + match.group(1) + "}", path)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: "{" + match.group(1) + "}", path)
    return "/" + path, free


MODEL_WORDS = (
    ("importrecord", "record"),
    ("imports", "record"),
    ("publishedversion", "version"),
    ("versions", "version"),
    ("dataitem", "item"),
    ("operation", "operation"),
    ("service", "service"),
    ("controller", "controller"),
)


def real_value(template: str, name: str, register) -> str | None:
    if name == "code":
        if "categor" in template:
            return "identity"
        if "purpose" in template or "action" in template:
            return "collect" if "action" in template else "identity_verification"
        return register["controller"].code
    if name in ("pk", "object_id", "id"):
        for word, key in MODEL_WORDS:
            if word in template:
                if key == "controller" and "api/" in template:
                    return register["controller"].code
                return str(register[key].pk)
        if "processor" in template:
            return str(register["operation"].processor_id)
        return "1"
    return {
        "token": register["token"],
        "ref": version_key(register["version"]),
        "against": "previous",
        "fmt": "md",
        "format": "json",
        "app_label": "processors",
        "content_type_id": str(ContentType.objects.get_for_model(Operation).pk),
    }.get(name)


def concrete(template: str, register, hostile: dict[str, bytes] | None = None) -> str | None:
    if re.search(r"[()|*+\[\]]", template):
        return None
    values = {}
    for name in re.findall(r"{(\w+)}", template):
        if hostile and name in hostile:
            values[name] = encoded(hostile[name])
        elif (value := real_value(template, name, register)) is not None:
            values[name] = value
        else:
            return None
    return template.format(**values)


def routed_paths(register) -> list[str]:
    return list(dict.fromkeys(p for t, _free in url_templates() if (p := concrete(t, register))))


# --- Answers --------------------------------------------------------------------------------------


def problem_with(response, method: str, path: str) -> str | None:
    """Why the answer is wrong (a 5xx, or an API error not in the API's shape), or None."""
    status = response.status_code
    if status >= 500:
        return f"{status} {method} {path[:300]}"
    # The browsable API's login and the Swagger page are HTML pages for people, not API answers.
    if path.startswith("/api/v1/") and not path.startswith(BROWSER_PAGES) and status >= 400:
        try:
            # The schema answers in YAML unless asked for JSON; its errors are the same object.
            content_type = response.get("Content-Type", "")
            yaml_body = "openapi" in content_type and "json" not in content_type
            error = (yaml.safe_load if yaml_body else json.loads)(response.content)["error"]
            assert {"code", "message", "fields"} <= set(error)
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"{status} {method} {path[:300]}: not the API's error shape: {response.content[:200]!r}"
    return None


def get(client: Client, path: str, query: str = ""):
    return client.get(f"{path}?{query}" if query else path, HTTP_ACCEPT_LANGUAGE="en")


def post_form(client: Client, action: str, body: str):
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    return client.generic(
        "POST",
        action,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CSRFTOKEN=token,
        HTTP_ACCEPT_LANGUAGE="en",
    )


# --- Forms ----------------------------------------------------------------------------------------

SKIPPED_ACTIONS = ("/logout/", "/i18n/setlang/")


def page_forms(response, path: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The POST forms of an HTML page: (action, [(name, type, value)]) with the page's CSRF token."""
    if "text/html" not in response.get("Content-Type", "") or not response.content.strip():
        return []
    document = lxml.html.fromstring(response.content)
    forms = []
    for form in document.forms:
        if (form.method or "get").lower() != "post":
            continue
        action = urlsplit(urljoin(path, form.get("action") or path)).path
        if any(skipped in action for skipped in SKIPPED_ACTIONS):
            continue
        fields = []
        for element in form.inputs:
            name = element.get("name")
            kind = (element.get("type") or element.tag).lower()
            if name and kind not in ("submit", "button", "image", "file", "reset"):
                fields.append((name, kind, element.get("value") or ""))
        forms.append((action, fields))
    return forms


def hostile_body(fields: list[tuple[str, str, str]], rotation: Rotation, *, keep_hidden: bool) -> str:
    sent: list[tuple[str, bytes]] = []
    for name, kind, value in fields:
        if name == "csrfmiddlewaretoken" or (keep_hidden and kind == "hidden"):
            sent.append((name, value.encode()))
        else:
            sent.append((name, rotation.next()))
    return form_body(sent)


# --- The walk -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", USERS)
def test_no_hostile_query_path_or_form_value_gets_a_500(kind, django_user_model, admin_user, register):
    client = client_for(kind, django_user_model, admin_user, register)
    rotation = Rotation(start=USERS.index(kind) * 7)
    problems: list[str] = []
    forms: dict[str, list] = {}
    for path in routed_paths(register):
        # A plain visit: the forms it offers, and the CSRF cookie they need.
        plain = get(client, path)
        if problem := problem_with(plain, "GET", path):
            problems.append(problem)
        for action, fields in page_forms(plain, path):
            forms.setdefault(action, fields)
        query = "&".join(f"{name}={encoded(rotation.next())}" for name in QUERY_NAMES)
        if problem := problem_with(get(client, path, query), "GET", f"{path}?{query}"):
            problems.append(problem)
    for template, free in url_templates():
        if not free or kind == "member":  # path parameters are matched before anyone is asked who they are
            continue
        path = concrete(template, register, {name: rotation.next() for name in free})
        if path and (problem := problem_with(get(client, path), "GET", path)):
            problems.append(problem)
    for action, fields in forms.items():
        # With the hidden fields as the page gave them (versions, formset counts) the values reach the
        # services; that deeper pass is the superuser's, who may post everywhere.
        for keep_hidden in (False, True) if kind == "superuser" else (False,):
            if keep_hidden and action.endswith("/delete/"):
                continue  # a valid confirmation would delete the objects the other pages show
            response = post_form(client, action, hostile_body(fields, rotation, keep_hidden=keep_hidden))
            if response.status_code == 403 and b"CSRF" in response.content:
                problems.append(f"CSRF refused on {action}: the walk lost its token")
            if problem := problem_with(response, "POST", action):
                problems.append(problem)

    assert problems == [], "\n".join(problems)
    if kind != "anonymous":
        assert len(forms) >= 10  # the walk did find the site's, the admin's and the API's forms


RAW_PATHS = (
    "/%00",
    "/explorer/%00/",
    "/disclosure/%ED%A0%80/",
    "/disclosure/%FF%FE/",
    "/disclosure/%C0%80/versions/",
    "/categories/%E2%82/",
    "/api/v1/operations/%00/",
    "/api/v1/controllers/%FF/",
    "/api/v1/%ED%A0%80/",
    "/admin/processors/processor/%00/change/",
    "/admin/processors/processor/%FF/change/",
    "/admin/processors/%ED%A0%80/",
    "/static/..%2f..%2fregistry%2fsettings.py",
    "/disclosure/alphaco/versions/..%2f..%2f/",
)


@pytest.mark.parametrize("kind", USERS)
def test_broken_encodings_in_raw_paths_are_not_a_500(kind, django_user_model, admin_user, register):
    client = client_for(kind, django_user_model, admin_user, register)

    problems = [p for path in RAW_PATHS if (p := problem_with(get(client, path), "GET", path))]

    assert problems == [], "\n".join(problems)


# --- API writes, from the OpenAPI schema ----------------------------------------------------------


def api_writes(schema: dict) -> list[tuple[str, str, list[str]]]:
    """(method, path template, body field names) of every write the schema documents."""
    components = schema.get("components", {}).get("schemas", {})
    writes = []
    for path, methods in schema["paths"].items():
        for method in ("post", "put", "patch"):
            if method not in methods:
                continue
            content = methods[method].get("requestBody", {}).get("content", {})
            body = content.get("application/json") or next(iter(content.values()), {})
            reference = body.get("schema", {}).get("$ref", "")
            properties = components.get(reference.rsplit("/", 1)[-1], {}).get("properties", {})
            writes.append(
                (method, path, [name for name, spec in properties.items() if not spec.get("readOnly")])
            )
    return writes


def api_path(template: str, register) -> str:
    return re.sub(
        r"{(\w+)}",
        lambda match: real_value(template.replace("/api/v1/", "api/"), match.group(1), register) or "1",
        template,
    )


@pytest.mark.parametrize("kind", USERS)
def test_no_hostile_api_write_gets_a_500_and_errors_keep_the_api_shape(
    kind, django_user_model, admin_user, register
):
    schema_client = Client()
    schema_client.force_login(admin_user)
    schema = json.loads(schema_client.get("/api/v1/schema/", {"format": "json"}).content)
    writes = api_writes(schema)
    client = client_for(kind, django_user_model, admin_user, register)
    get(client, "/accounts/login/")  # the CSRF cookie a session's API write must echo
    rotation = Rotation(start=USERS.index(kind) * 5)
    problems = []
    for method, template, names in writes:
        path = api_path(template, register)
        values = {name: rotation.next().decode("utf-8", "surrogateescape") for name in names or ["name"]}
        bodies = [
            ("application/json", json.dumps(values)),
            ("application/json", b'{"name_en": "\xff\xfe", "label": "\xed\xa0\x80"}'),
            ("application/json", "{not json"),
            (
                "application/x-www-form-urlencoded",
                form_body([(n, rotation.next()) for n in names or ["name"]]),
            ),
        ]
        token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
        for content_type, body in bodies:
            response = client.generic(
                method.upper(),
                path,
                body,
                content_type=content_type,
                HTTP_X_CSRFTOKEN=token,
                HTTP_ACCEPT_LANGUAGE="en",
            )
            if problem := problem_with(response, method.upper(), path):
                problems.append(f"{problem} ({content_type})")

    assert len(writes) >= 8
    assert problems == [], "\n".join(problems)


# --- Hypothesis: drawn combinations on the most exposed doors --------------------------------------


def hostile_values() -> st.SearchStrategy[bytes]:
    atom = st.sampled_from(HOSTILE)
    text = st.text(max_size=30).map(lambda value: value.encode("utf-8", "surrogatepass"))
    return st.one_of(
        atom, st.tuples(text, atom, text).map(b"".join), st.lists(atom, max_size=4).map(b"".join)
    )


EXPOSED_GETS = (
    "/disclosure/alphaco/",
    "/disclosure/alphaco/embed/",
    "/disclosure/alphaco/download/",
    "/explorer/",
    "/api/v1/operations/",
    "/api/v1/processors/",
    "/admin/processors/operation/",
)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=hostile_values(), name=st.sampled_from(QUERY_NAMES))
def test_drawn_hostile_values_on_the_exposed_doors_never_get_a_500(admin_client, register, value, name):
    services.controller_update(controller=register["controller"], disclosure_public=True)
    anonymous = Client(enforce_csrf_checks=True, raise_request_exception=False)
    problems = []
    for client in (anonymous, admin_client):
        for path in EXPOSED_GETS:
            query = f"{name}={encoded(value)}&{encoded(value)}=1"
            if problem := problem_with(get(client, path, query), "GET", f"{path}?{query}"):
                problems.append(problem)
        login = get(anonymous, "/accounts/login/")
        for action, fields in page_forms(login, "/accounts/login/"):
            body = form_body(
                [(n, v.encode() if n == "csrfmiddlewaretoken" else value) for n, _k, v in fields]
            )
            if problem := problem_with(post_form(anonymous, action, body), "POST", action):
                problems.append(problem)

    assert problems == [], "\n".join(problems)


# --- The 500s this walk found, each pinned ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/processors/service/add/?controller=x",
        "/admin/processors/operation/add/?service=%00&processor=..%2f&purposes=1,x",
        "/admin/processors/controller/add/?extra_sensitive_categories=%FF",
    ],
)
def test_an_admin_form_opened_with_a_value_that_is_no_key_is_shown(admin_client, register, path):
    assert admin_client.get(path).status_code in (200, 400)


def test_an_admin_form_posted_with_a_value_that_is_no_key_shows_its_errors(admin_client, register):
    posted = {"controller": "evil\u202etxt", "name": "x"}
    response = admin_client.post("/admin/processors/service/add/", posted)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["controller"]


def test_a_lone_surrogate_escaped_in_json_is_a_400_in_the_api_shape(api_client, register):
    body = json.dumps({"name_en": "x\udcff"})  # json.dumps writes the escape "\udcff"

    response = api_client.generic("POST", "/api/v1/processors/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name_en": [response.json()["error"]["message"]]}


def test_a_surrogate_pair_in_json_is_a_character_and_accepted(api_client, register):
    body = json.dumps({"name_en": "Smile 😀 Ltd"})

    response = api_client.generic("POST", "/api/v1/processors/", body, content_type="application/json")

    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/v1/auth/login/"])
def test_a_login_with_a_10000_character_username_is_a_failed_login(client, register, path):
    response = client.post(path, {"username": "u" * 10_000, "password": "wrong"})

    assert response.status_code in (200, 400)
