"""Who may do what: the single permission table, checked before any view runs.

Every endpoint declares one permission (``@requires``) or is explicitly ``@public``;
an endpoint that declares neither is refused (fail closed). The table-driven test in
``tests/test_permissions.py`` walks every endpoint for every role.
"""
from __future__ import annotations

from collections.abc import Callable

from rso.users.models import Role

ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.CASEWORKER, Role.SUPERVISOR})
PUBLIC = "public"
AUTHENTICATED = "authenticated"

#: permission -> roles holding it. NCPs hold no permission that touches personal data.
PERMISSIONS: dict[str, frozenset[Role]] = {
    AUTHENTICATED: ALL_ROLES,
    "users.manage": frozenset({Role.ADMIN}),
    "audit.read": frozenset({Role.AUDITOR, Role.ADMIN}),
    "reference.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR}),
    "case.read": STAFF,
    "case.write": STAFF,
    "case.import": STAFF,
    "person.erase": frozenset({Role.ADMIN, Role.AUDITOR}),
    "person.export": frozenset({Role.SUPERVISOR, Role.AUDITOR}),
    "workflow.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR}),
    "queue.work": STAFF,
    "queue.reassign": frozenset({Role.SUPERVISOR}),
    # firing a step: the engine then checks the step's roles, office and (partners) organisation
    "workflow.fire": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.PARTNER}),
    "profile.read": STAFF,
    "profile.write": STAFF,
    # partners read only referrals addressed to their organisation, only the shared fields
    "referral.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.PARTNER}),
    "referral.write": STAFF,
    "referral.respond": frozenset({Role.PARTNER}),
    # refugee status determination (rso/rsd): officers' steps, supervisors' reviews and decisions
    "rsd.read": STAFF,
    "rsd.work": STAFF,
    "rsd.review": frozenset({Role.SUPERVISOR}),
    "rsd.coi.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN}),
    "rsd.coi.manage": frozenset({Role.SUPERVISOR, Role.ADMIN}),
    "rsd.roster.manage": frozenset({Role.SUPERVISOR, Role.ADMIN}),
    "rsd.dashboard": frozenset({Role.SUPERVISOR, Role.ADMIN}),
    "rsd.procedures": frozenset({Role.ADMIN}),
    # NCP reports (rso/reporting): aggregated, disclosure-controlled figures only
    "report.prepare": STAFF,
    "report.approve": frozenset({Role.SUPERVISOR}),
    "report.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.NCP}),
    "report.receive": frozenset({Role.NCP}),
    "report.entitlements": frozenset({Role.ADMIN}),
    "report.trace": frozenset({Role.AUDITOR, Role.ADMIN}),
    # resettlement (rso/resettlement): queue and procedure, dossier (personal data), pledges, matching
    "resettlement.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN}),
    "resettlement.work": STAFF,
    "resettlement.dossier": STAFF,
    "resettlement.pledges.read": frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR}),
    "resettlement.pledges.manage": frozenset({Role.SUPERVISOR, Role.ADMIN}),
    "resettlement.match": frozenset({Role.SUPERVISOR}),
    # return queue (rso/returns): the person's return (personal data), steps, checks; statistics are counts
    "return.read": STAFF,
    "return.write": STAFF,
    "return.stats": frozenset({Role.SUPERVISOR, Role.ADMIN}),
}


def allowed(user, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    if user is None or not user.active:
        return False
    roles = PERMISSIONS.get(permission)
    if roles is None:  # an unknown permission name is a programming error: deny
        return False
    return Role(user.role) in roles


def requires(permission: str) -> Callable:
    """Declare the permission a view needs; enforced by ``rso.web`` before the view runs."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view):
        view.permission = permission
        return view

    return decorate


def public(view):
    view.permission = PUBLIC
    return view
