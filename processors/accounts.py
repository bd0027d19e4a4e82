"""Signing in to the site: Django's auth views with the site's templates, and the "my account" page.

Readers, editors and publishers sign in here (settings.LOGIN_URL); the admin keeps its own, staff-only
login. The templates live in templates/accounts/ rather than templates/registration/ so the admin's own
password-change and logged-out pages (which Django looks up as registration/*.html) stay the admin's.
The login form is Django's ``AuthenticationForm``, which passes the request to ``authenticate()``: the
login throttle (django-axes) counts failures here as on every other door.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# What a permission lets someone do on the site, in the words the pages use; in the order of the work.
ABILITIES = (
    ("processors.view_operation", gettext_lazy("can view the register")),
    ("processors.add_operation", gettext_lazy("can import tables")),
    ("processors.change_operation", gettext_lazy("can edit operations")),
    ("processors.add_publishedversion", gettext_lazy("can publish")),
)


def account_abilities(user: Any) -> list[str]:
    """What the user may do on the site, in plain words (an empty list: nothing beyond public pages)."""
    abilities = [str(label) for permission, label in ABILITIES if user.has_perm(permission)]
    if user.is_staff:
        abilities.append(_("can use the administration"))
    return abilities


class LoginView(auth_views.LoginView):
    """The site's login for every role; ``next`` is followed only to this site."""

    template_name = "accounts/login.html"


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only, with the CSRF token), then the login page says so."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            # After logout(), which flushed the session: the message goes to the new, anonymous one.
            messages.success(request, _("You have signed out."))
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for an e-mail address; only an active account with it gets a link, and the page never says."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """My account: who I am, my groups, what I may do, and where to change the password."""
    user = request.user
    context = {
        "groups": [group.name for group in user.groups.order_by("name")],
        "abilities": account_abilities(user),
    }
    return render(request, "accounts/me.html", context)
