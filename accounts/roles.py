"""Default groups and the permissions they start with.

A group gets its permissions only when it is first created, so an admin who later takes
`barge` away from Curators is not overruled by the next `migrate`.
"""

from django.contrib.auth.models import Group, Permission

from .models import ROLE_GROUPS, Role

DEFAULT_PERMISSIONS = {
    Role.ADMIN: ["listen", "whisper", "barge", "pickup", "dial", "playback"],
    Role.CURATOR: ["listen", "whisper", "barge", "pickup", "dial", "playback"],
    Role.TRAINEE: ["listen", "pickup", "dial", "playback"],
}


def ensure_default_groups(**_kwargs):
    for role, group_name in ROLE_GROUPS.items():
        group, created = Group.objects.get_or_create(name=group_name)
        if created:
            perms = Permission.objects.filter(
                content_type__app_label="supervision", codename__in=DEFAULT_PERMISSIONS[role]
            )
            group.permissions.set(perms)
