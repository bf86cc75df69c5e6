"""Field authorization declared the AppSync way: ``@aws_cognito_user_pools(cognito_groups: [...])``.

``allow(...)`` gives a field the directive (so it shows in the exported SDL) and a permission
check that runs before the field's resolver: no identity is UNAUTHENTICATED, an identity outside
the groups is FORBIDDEN.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types import Info

from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import Forbidden, Unauthenticated


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT],
    name="aws_cognito_user_pools",
    description="Callers must be signed in with a token of the user pool and belong to one of these groups.",
)
class CognitoUserPools:
    cognito_groups: list[str] | None = strawberry.directive_field(name="cognito_groups", default=None)


class InGroups(BasePermission):
    def __init__(self, groups: tuple[Group, ...]) -> None:
        self.groups = frozenset(groups)
        directive = CognitoUserPools(cognito_groups=[g.value for g in groups])
        self._schema_directive = directive  # type: ignore[misc]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        identity: Identity | None = info.context.identity
        if identity is None:
            raise Unauthenticated("Sign in first: send your Cognito access token in the Authorization header")
        if not identity.in_any(self.groups):
            parent = info._raw_info.parent_type.name
            raise Forbidden(f"Not Authorized to access {info.field_name} on type {parent}")
        return True


def allow(*groups: Group) -> PermissionExtension:
    return PermissionExtension(permissions=[InGroups(groups)], use_directives=True)


STAFF = (Group.ADMINS, Group.STAFF)
EVERYONE = (Group.ADMINS, Group.STAFF, Group.DONORS, Group.HOSPITALS)
