"""Who is staff, and who must still set up two-factor authentication: one answer for the middleware that guards
the staff pages, the record views (read outside /desk/) and the staff session timeouts."""

from __future__ import annotations

from allauth.mfa.models import Authenticator


def is_staff_member(user) -> bool:
    """Editors, admins and clinic staff: the accounts that must use two-factor authentication."""
    if user.is_staff or user.is_superuser or user.has_perm("wagtailadmin.access_admin"):
        return True
    return user.clinic_memberships.exists()


def needs_mfa(user) -> bool:
    return not Authenticator.objects.filter(user=user).exists() and is_staff_member(user)
