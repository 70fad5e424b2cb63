"""The "Permissions and limits" guide's DRF permission class (myapp/permissions.py on the page)."""

from __future__ import annotations

# --8<-- [start:permission]
from rest_framework.permissions import BasePermission


class InReportingGroup(BasePermission):
    """Only members of the "Reporting" group may use the reports API at all."""

    message = "Only members of the Reporting group may use reports."

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user and user.is_authenticated and user.groups.filter(name="Reporting").exists()
        )


# --8<-- [end:permission]
