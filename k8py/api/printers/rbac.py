"""Printers for rbac.authorization.k8s.io bindings.

Roles and ClusterRoles have no printer upstream: they get the default table.
"""

from __future__ import annotations

from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.values import as_dict, as_list, name_of, text


def subjects(binding: dict) -> tuple[str, str, str]:
    """(users, groups, service accounts as namespace/name), each `, `-joined."""
    users, groups, accounts = [], [], []
    for subject in map(as_dict, as_list(binding.get("subjects"))):
        kind, name = subject.get("kind"), text(subject.get("name"))
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            accounts.append(f"{text(subject.get('namespace'))}/{name}")
    return ", ".join(users), ", ".join(groups), ", ".join(accounts)


def _binding_cells(binding, now):
    ref = as_dict(binding.get("roleRef"))
    return [name_of(binding), f"{text(ref.get('kind'))}/{text(ref.get('name'))}", age(binding, now),
            *subjects(binding)]


def _binding_printer(kind: str) -> Printer:
    noun = kind[0].lower() + kind[1:]
    return Printer((
        NAME,
        Column("Role", doc=f"rbac.v1.{kind}.roleRef"),
        AGE,
        Column("Users", priority=1, description=f"Users in the {noun}"),
        Column("Groups", priority=1, description=f"Groups in the {noun}"),
        Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {noun}"),
    ), _binding_cells)


PRINTERS = {
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding_printer("RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding_printer("ClusterRoleBinding"),
}
