"""Who may use the console and what each may do: users with hashed passwords, sessions that time
out, roles, the actions they allow, and the audit log of every attempt."""

from headwater.access.actions import AccessDenied, Actions
from headwater.access.roles import Action, Role, allowed
from headwater.access.sessions import LoginFailed, Principal, SessionExpired, login, logout, principal

__all__ = [
    "AccessDenied",
    "Action",
    "Actions",
    "LoginFailed",
    "Principal",
    "Role",
    "SessionExpired",
    "allowed",
    "login",
    "logout",
    "principal",
]
