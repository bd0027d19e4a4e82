"""Signing in on the site for every role, the account pages, and the styled 403, 404 and 500 pages.

E-mail goes to Django's locmem outbox here (the test runner sets that backend), never to the console.
"""

import re
import runpy
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse
from django.views import defaults

from processors.accounts import account_abilities

pytestmark = pytest.mark.django_db

PASSWORD = "reader-password-for-tests"
LOGIN = "/accounts/login/"


def reader(django_user_model, *codenames: str, username: str = "reader", **fields):
    """A user who is not staff, with the given permissions of the register."""
    user = django_user_model.objects.create_user(username, password=PASSWORD, **fields)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=codenames)
    )
    return user


READS = ("view_operation", "view_processor", "view_datacategory")


def sign_in(client, username: str = "reader", password: str = PASSWORD, **data):
    return client.post(LOGIN, {"username": username, "password": password, **data})


def settings_module() -> dict:
    """The names registry/settings.py defines under the current environment."""
    return runpy.run_path(str(Path(django_settings.BASE_DIR) / "registry" / "settings.py"))


def choose_language(client, language: str) -> None:
    """The site's language switch, as the header's buttons use it."""
    client.post(reverse("set_language"), {"language": language, "next": LOGIN})


# --- Signing in -----------------------------------------------------------------------------------


def test_a_reader_who_is_not_staff_signs_in_on_the_site_and_reads_the_register(client, django_user_model):
    reader(django_user_model, *READS)

    response = sign_in(client, next="/explorer/")

    assert response.status_code == 302
    assert response["Location"] == "/explorer/"
    assert client.get("/").status_code == 200
    assert client.get("/explorer/").status_code == 200


def test_without_next_the_login_goes_to_the_dashboard(client, django_user_model):
    reader(django_user_model, *READS)

    assert sign_in(client)["Location"] == reverse("processors:dashboard")


def test_the_admin_still_refuses_a_reader_who_is_not_staff(client, django_user_model):
    reader(django_user_model, *READS)
    sign_in(client)

    assert client.get("/admin/")["Location"].startswith(reverse("admin:login"))
    refused = client.post(reverse("admin:login"), {"username": "reader", "password": PASSWORD})
    assert refused.status_code == 200  # the admin's form again, with its error


@pytest.mark.parametrize(
    "url", ["/explorer/", "/matrix/", "/import/", "/accounts/me/", "/accounts/password/"]
)
def test_anonymous_visitors_are_sent_to_the_site_login(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={url}"


def test_the_start_page_offers_the_site_login_to_anonymous_visitors(client):
    page = client.get("/").content.decode()

    assert f'href="{LOGIN}?next=/"' in page


def test_the_login_page_is_in_the_sites_look_and_has_no_sign_in_link_to_itself(client):
    page = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'class="site-header"' in page
    assert 'name="username"' in page and 'name="password"' in page
    assert reverse("accounts:password_reset") in page
    assert f'href="{LOGIN}?next=' not in page


@pytest.mark.parametrize(
    ("language", "error"),
    [
        ("en", "Please enter a correct username and password."),
        ("zh-hans", "请输入一个正确的用户名和密码。"),
    ],
)
def test_a_wrong_password_is_refused_in_the_chosen_language(client, django_user_model, language, error):
    reader(django_user_model, *READS)
    choose_language(client, language)

    response = sign_in(client, password="not-the-password")

    assert response.status_code == 200
    assert error in response.content.decode()
    assert f'lang="{language}"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_next_on_another_host_is_not_followed(client, django_user_model):
    reader(django_user_model, *READS)

    response = sign_in(client, next="https://evil.example/steal")

    assert response["Location"] == reverse("processors:dashboard")


def login_form(page: str) -> str:
    return re.search(rf'<form class="card" method="post" action="{LOGIN}".*?</form>', page, re.S).group(0)


def test_the_login_page_keeps_a_safe_next_and_drops_another_hosts(client):
    kept = client.get(LOGIN, {"next": "/explorer/"}).content.decode()
    dropped = client.get(LOGIN, {"next": "//evil.example/"}).content.decode()

    assert '<input type="hidden" name="next" value="/explorer/">' in login_form(kept)
    assert 'name="next"' not in login_form(dropped)


def test_the_site_login_is_throttled_like_the_other_doors(client, django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    reader(django_user_model, *READS)

    answers = [sign_in(client, password="wrong").status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert sign_in(client).status_code == 429


# --- The header and signing out -------------------------------------------------------------------


def test_the_header_shows_the_users_name_and_a_sign_out_button(client, django_user_model):
    reader(django_user_model, *READS, first_name="Li", last_name="Lei")
    sign_in(client)

    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f'action="{reverse("accounts:logout")}" method="post"' in page
    assert re.search(rf'href="{reverse("accounts:me")}"[^>]*>Li Lei</a>', page)
    assert "Sign out" in page


def test_signing_out_needs_a_post(client, django_user_model):
    reader(django_user_model, *READS)
    sign_in(client)

    assert client.get(reverse("accounts:logout")).status_code == 405
    assert "_auth_user_id" in client.session


def test_signing_out_by_post_ends_the_session_and_says_so(client, django_user_model):
    reader(django_user_model, *READS)
    sign_in(client)

    response = client.post(reverse("accounts:logout"), HTTP_ACCEPT_LANGUAGE="en", follow=True)

    assert response.redirect_chain == [(LOGIN, 302)]
    assert "You have signed out." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_signing_out_checks_the_csrf_token(django_user_model):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(reader(django_user_model, *READS))

    assert client.post(reverse("accounts:logout")).status_code == 403
    assert "_auth_user_id" in client.session


# --- Passwords ------------------------------------------------------------------------------------


def test_a_password_reset_sends_one_email_whose_link_sets_a_new_password(client, django_user_model, settings):
    reader(django_user_model, *READS, email="reader@example.com")

    response = client.post(reverse("accounts:password_reset"), {"email": "reader@example.com"})

    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["reader@example.com"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    link = re.search(r"https?://testserver(/accounts/password/reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"] is True
    set_password = form_page.redirect_chain[-1][0]
    done = client.post(
        set_password, {"new_password1": "a-new-long-password-1", "new_password2": "a-new-long-password-1"}
    )
    assert done["Location"] == reverse("accounts:password_reset_complete")
    client.logout()
    assert sign_in(client, password="a-new-long-password-1")["Location"] == reverse("processors:dashboard")


def test_a_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})

    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_the_email_backend_is_the_console_unless_the_environment_names_one(monkeypatch):
    monkeypatch.delenv("DJANGO_EMAIL_BACKEND", raising=False)
    assert settings_module()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"

    monkeypatch.setenv("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("DJANGO_DEFAULT_FROM_EMAIL", "privacy@example.com")
    configured = settings_module()
    assert configured["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert configured["DEFAULT_FROM_EMAIL"] == "privacy@example.com"
    assert configured["LOGIN_URL"] == "accounts:login"


def test_a_signed_in_user_changes_the_password(client, django_user_model):
    reader(django_user_model, *READS)
    sign_in(client)

    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-password-1",
            "new_password2": "a-new-long-password-1",
        },
    )

    assert response["Location"] == reverse("accounts:password_change_done")
    assert client.get("/").status_code == 200  # still signed in
    client.logout()
    assert sign_in(client, password="a-new-long-password-1").status_code == 302


# --- My account -----------------------------------------------------------------------------------


def test_my_account_says_in_plain_words_what_the_user_may_do(client, django_user_model):
    user = reader(django_user_model, "view_operation", email="reader@example.com")
    editors = Group.objects.create(name="Editors")
    editors.permissions.set(Permission.objects.filter(codename__in=["change_operation"]))
    user.groups.add(editors)
    sign_in(client)

    page = client.get(reverse("accounts:me"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "reader@example.com" in page
    assert "Editors" in page
    assert "Can view the register" in page
    assert "Can edit operations" in page
    assert "Can publish" not in page
    assert reverse("accounts:password_change") in page
    assert reverse("admin:index") not in page


def test_the_abilities_of_a_publisher_and_of_staff(django_user_model):
    publisher = reader(django_user_model, "view_operation", "add_publishedversion")
    staff = django_user_model.objects.create_user("clerk", is_staff=True)

    assert [str(ability) for ability in account_abilities(publisher)] == [
        "can view the register",
        "can publish",
    ]
    assert account_abilities(staff) == ["can use the administration"]


def test_my_account_links_staff_to_the_admin(client, django_user_model):
    django_user_model.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    sign_in(client, "clerk")

    assert reverse("admin:index") in client.get(reverse("accounts:me")).content.decode()


# --- Error pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "ask"),
    [("en", "Ask the register's administrator for access"), ("zh-hans", "请向登记册的管理员申请权限")],
)
def test_a_user_without_permission_gets_the_styled_403_with_what_to_do(
    client, django_user_model, language, ask
):
    reader(django_user_model)
    sign_in(client)
    choose_language(client, language)

    response = client.get("/")

    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="site-header"' in page
    assert ask in page.replace("&#x27;", "'")
    assert f'action="{reverse("accounts:logout")}"' in page


def test_a_reader_refused_an_import_is_offered_the_dashboard(client, django_user_model):
    reader(django_user_model, *READS)
    sign_in(client)

    response = client.get("/import/")

    assert response.status_code == 403
    assert f'href="{reverse("processors:dashboard")}"' in response.content.decode()


def test_an_unknown_page_is_the_styled_404(client, settings):
    settings.DEBUG = False

    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 404
    page = response.content.decode()
    assert 'class="site-header"' in page
    assert "This page does not exist" in page
    assert f'href="{LOGIN}"' in page


def test_the_500_page_needs_neither_the_request_nor_the_database(django_assert_num_queries):
    request = RequestFactory().get("/")

    with django_assert_num_queries(0):
        response = defaults.server_error(request)

    assert response.status_code == 500
    page = response.content.decode()
    assert 'class="site-header"' in page
    assert 'href="/"' in page
