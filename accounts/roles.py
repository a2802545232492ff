"""Default groups and the permissions they start with.

A group gets its permissions only when it is first created, so an admin who later takes
`barge` away from Curators is not overruled by the next `migrate`.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from .models import ROLE_GROUPS, Role

DEFAULT_PERMISSIONS = {
    Role.ADMIN: ["listen", "whisper", "barge", "pickup", "dial", "playback", "evaluate"],
    Role.CURATOR: ["listen", "whisper", "barge", "pickup", "dial", "playback", "evaluate"],
    Role.TRAINEE: ["listen", "pickup", "dial", "playback"],
}
# Admins keep the roster, so their group may also manage users and extensions in the admin site.
ROSTER_PERMISSIONS = {
    Role.ADMIN: [f"{verb}_{model}" for model in ("user", "extension") for verb in ("view", "add", "change", "delete")],
    Role.CURATOR: [],
    Role.TRAINEE: [],
}


def default_permissions(role):
    return Permission.objects.filter(
        Q(content_type__app_label="supervision", codename__in=DEFAULT_PERMISSIONS[role])
        | Q(content_type__app_label="accounts", codename__in=ROSTER_PERMISSIONS[role])
    )


def ensure_default_groups(**_kwargs):
    for role, group_name in ROLE_GROUPS.items():
        group, created = Group.objects.get_or_create(name=group_name)
        if created:
            group.permissions.set(default_permissions(role))
