"""Bearer tokens from the estate config; no anonymous writes.

Tokens are compared in constant time. A request's user is the token's *name*: that is what
the audit log and captures record, never the token itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

WRITE_ROLES = frozenset({"admin", "operator", "guard"})


@dataclass(frozen=True, slots=True)
class ApiUser:
    """Who is calling: the token's name and roles."""

    name: str
    roles: frozenset[str]

    def may(self, roles: Iterable[str]) -> bool:
        """True if the user holds any of ``roles`` (admins hold every role)."""
        return "admin" in self.roles or not self.roles.isdisjoint(roles)


class TokenAuth:
    """Resolves ``Authorization: Bearer <token>`` to an :class:`ApiUser`."""

    def __init__(self, tokens: Iterable[object]) -> None:
        self._tokens = [(t.token.encode(), ApiUser(t.name, frozenset(t.roles))) for t in tokens]  # type: ignore[attr-defined]

    def user_for(self, header: str | None) -> ApiUser | None:
        """The user a header authenticates, or None."""
        scheme, _, credentials = (header or "").partition(" ")
        if (
            scheme.lower() != "bearer" or not credentials.strip()
        ):  # the scheme is case-insensitive (RFC 7235)
            return None
        offered = credentials.strip().encode()
        found = None
        for token, user in self._tokens:
            # No early exit: every token is compared, so timing says nothing.
            if hmac.compare_digest(token, offered):
                found = user
        return found
