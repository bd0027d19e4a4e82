"""The accounts' admin: Django's own, except that an account that changed the register is not deleted.

History rows, import records and published versions name their author; deleting that author's account is
refused with the reason, and the page offers deactivation (the "active" box) instead.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from processors import services
from processors.history import user_has_audit_trail

User = get_user_model()


class RegisterUserAdmin(UserAdmin):
    actions = ["deactivate_users"]

    def delete_view(self, request, object_id, extra_context=None):
        user = self.get_object(request, unquote(object_id))
        if user is not None and user_has_audit_trail(user):
            # Refused before the confirmation page, which would otherwise promise a deletion.
            try:
                services.user_delete(user=user)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            return redirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[user.pk])
            )
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        services.user_delete(user=obj)

    def delete_queryset(self, request, queryset):
        kept = []
        for user in queryset:
            try:
                services.user_delete(user=user)
            except ValidationError:
                kept.append(user.get_username())
        if kept:
            self.message_user(
                request,
                ngettext(
                    "%(users)s changed the register and was not deleted; deactivate the account instead.",
                    "%(users)s changed the register and were not deleted; deactivate the accounts instead.",
                    len(kept),
                )
                % {"users": ", ".join(kept)},
                messages.ERROR,
            )

    @admin.action(description=_("Deactivate the selected users"))
    def deactivate_users(self, request, queryset):
        for user in queryset:
            services.user_deactivate(user=user)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, RegisterUserAdmin)
