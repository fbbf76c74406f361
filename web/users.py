"""Who may sign in to the web app: users with a role, the dealers a manager sees, and an
argon2id password hash, kept in a YAML file beside the profile (mode 0600).

Roles and what each may do:
- `marketer`: masked data; preview, build and download masked lists;
- `manager`: masked data of the dealers listed for the user; their KPIs and lists;
- `reviewer`: the linkage review queue;
- `privileged`: reveal a customer's full contact details with a stated purpose;
- `admin`: everything, and the export audit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cdp.config import ConfigError, load_yaml_model

__all__ = ["PERMISSIONS", "ROLES", "UserBook", "WebUser", "hash_password", "load_users", "save_users", "verify_password"]

ROLES = ("marketer", "manager", "reviewer", "privileged", "admin")
Role = Literal["marketer", "manager", "reviewer", "privileged", "admin"]
PERMISSIONS: dict[str, frozenset[str]] = {
    "marketer": frozenset({"view", "lists"}),
    "manager": frozenset({"view", "lists", "kpis"}),
    "reviewer": frozenset({"view", "review"}),
    "privileged": frozenset({"view", "lists", "reveal"}),
    "admin": frozenset({"view", "lists", "kpis", "review", "reveal", "audit"}),
}
_HASHER = PasswordHasher()
# Verified against when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password")
MIN_PASSWORD_LENGTH = 10


class WebUser(BaseModel):
    """One account. A manager sees only the customers, lists and figures of `dealers`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    password_hash: str = Field(pattern=r"^\$argon2id\$")
    dealers: list[str] = Field(default_factory=list)

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    def sees_dealer(self, dealer: str | None) -> bool:
        """Whether the user may see a dealer's data: only a manager is scoped."""
        return self.role != "manager" or (dealer is not None and dealer in self.dealers)

    @property
    def scoped(self) -> bool:
        return self.role == "manager"


class UserBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: dict[str, WebUser] = Field(default_factory=dict)

    @field_validator("users")
    @classmethod
    def _managers_have_dealers(cls, users: dict[str, WebUser]) -> dict[str, WebUser]:
        empty = sorted(name for name, user in users.items() if user.role == "manager" and not user.dealers)
        if empty:
            raise ValueError(f"managers need at least one dealer: {empty}")
        return users


def hash_password(password: str) -> str:
    """An argon2id hash with its own random salt."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(book: UserBook, name: str, password: str) -> WebUser | None:
    """The user when the password is theirs, else None (in the same time either way)."""
    user = book.users.get(name)
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def load_users(path: str | Path) -> UserBook:
    """The users file; a missing file means nobody may sign in yet. Errors name the file and key."""
    path = Path(path)
    return load_yaml_model(path, UserBook) if path.exists() else UserBook()


def save_users(path: str | Path, book: UserBook) -> None:
    """Write the users file atomically, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(book.model_dump(mode="json"), allow_unicode=True, sort_keys=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
