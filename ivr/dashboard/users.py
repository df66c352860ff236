"""Dashboard users and login attempts in Redis, over a connection that is always passed in.

Users live in one hash (name -> JSON), so adding, listing and removing are single commands and
the whole set sits in one Redis Cluster slot. Passwords are kept only as werkzeug scrypt hashes.
Each user gets a random `epoch` when added: a session names it, so removing a user (or adding it
again with a new password) ends every session it had. Each session also has an id of its own,
marked ended when it signs out, so a copy of its cookie is refused from then on.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from ivr.errors import IvrError

USERS_KEY = "ivr:dashboard:users"  # hash: name -> JSON {role, password_hash, epoch, created_at}
ENDED_SESSION_KEY = "ivr:dashboard:ended-session:{0}"  # set on sign-out, expires with the cookie
LOGIN_FAILS_USER_KEY = "ivr:dashboard:login-fails:user:{0}"  # counter with expiry
LOGIN_FAILS_ADDRESS_KEY = "ivr:dashboard:login-fails:address:{0}"  # counter with expiry

ROLES = ("viewer", "supervisor", "admin")  # each role may do what the ones before it may
NAME = re.compile(r"^[\w.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing is deliberately slow; bound the work one request can cause
HASH_METHOD = "scrypt"


class UserError(IvrError):
    """A user that cannot be added, found or removed as asked."""


@dataclass(frozen=True)
class User:
    """One person who may log in to the dashboard."""

    name: str
    role: str
    epoch: str
    created_at: float

    def may(self, role: str) -> bool:
        """Whether this user has `role` or one above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the password hash."""
        return {"name": self.name, "role": self.role, "created_at": self.created_at}


def normal_name(name: str) -> str:
    """A user name in its one stored form (NFC, trimmed), or UserError if it cannot be one."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not NAME.match(cleaned):
        raise UserError(
            f"a user name is 1 to 64 letters, digits, '.', '_', '@' or '-', not {name!r}"
        )
    return cleaned


def new_name(name: str) -> str:
    """The stored form of a name a new user may take, or UserError."""
    cleaned = normal_name(name)
    if not cleaned.strip("."):
        # Browsers resolve /dashboard/users/../remove to another URL: such a user could never
        # be removed from the dashboard.
        raise UserError(f"a user name needs more than dots, not {cleaned!r}")
    return cleaned


def check_password(password: str) -> None:
    """Refuse a password too short or too long to be kept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


class Users:
    """The dashboard's users in Redis."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def add(self, name: str, role: str, password: str, at: float) -> User:
        """Add a new user; UserError if the name is taken or the input is not acceptable."""
        name = new_name(name)
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        check_password(password)
        taken = self._record(name)  # names are told apart without letter case, as at login
        if taken is not None:
            raise UserError(
                f"a user {taken['name']!r} already exists (remove it first to replace it)"
            )
        user = User(name, role, secrets.token_hex(8), at)
        record = {**user.as_dict(), "epoch": user.epoch}
        record["password_hash"] = generate_password_hash(password, HASH_METHOD)
        if not self.redis.hsetnx(USERS_KEY, name, json.dumps(record, ensure_ascii=False)):
            raise UserError(f"a user {name!r} already exists (remove it first to replace it)")
        return user

    def get(self, name: str) -> User | None:
        """The user called `name`, if there is one."""
        record = self._record(name)
        return _user(record) if record else None

    def in_session(self, name: str, session_id: str) -> User | None:
        """The user a session names, unless that session was signed out (one round trip)."""
        try:
            key = normal_name(name)
        except UserError:
            return None
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(USERS_KEY, key)
            pipe.exists(ENDED_SESSION_KEY.format(session_id))
            raw, ended = pipe.execute()
        return _user(json.loads(raw)) if raw and not ended else None

    def end_session(self, session_id: str, lifetime: float) -> None:
        """Refuse the session `session_id` from now on (for as long as its cookie could live)."""
        self.redis.set(ENDED_SESSION_KEY.format(session_id), 1, ex=max(1, round(lifetime)))

    def all(self) -> list[User]:
        """Every user, by name."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(USERS_KEY))
        return sorted((_user(json.loads(v)) for v in raw.values()), key=lambda u: u.name)

    def remove(self, name: str) -> None:
        """Remove a user (ending its sessions); UserError if there is none of that name, or if
        it is the last admin (nobody could then manage users from the dashboard)."""
        key = normal_name(name)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # Watched, so that two admins removed at once cannot both be the other's
                    # "another admin".
                    pipe.watch(USERS_KEY)  # type: ignore[no-untyped-call]
                    raw = cast(dict[bytes, bytes], pipe.hgetall(USERS_KEY))
                    records = {k.decode(): json.loads(v) for k, v in raw.items()}
                    key = _same_name(key, records) or key
                    if key not in records:
                        raise UserError(f"no user {name.strip()!r}")
                    admins = [n for n, r in records.items() if r["role"] == "admin"]
                    if admins == [key]:
                        raise UserError(f"{name.strip()!r} is the last admin: add another first")
                    pipe.multi()
                    pipe.hdel(USERS_KEY, key)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is theirs; None otherwise, in about the same time."""
        record = self._record(name)
        if record is None or len(password) > MAX_PASSWORD_LENGTH:
            # Hash anyway, so that a wrong name takes as long as a wrong password.
            check_password_hash(_decoy_hash(), password[:MAX_PASSWORD_LENGTH])
            return None
        if not check_password_hash(record["password_hash"], password):
            return None
        return _user(record)

    def ensure(self, name: str, role: str, password: str, at: float) -> User:
        """The user with this password and role, added or replaced when it differs."""
        found = self.get(name)
        if found is not None and found.role == role and self.authenticate(name, password):
            return found
        self.redis.hdel(USERS_KEY, name)
        return self.add(name, role, password, at)

    def _record(self, name: str) -> dict[str, Any] | None:
        try:
            key = normal_name(name)
        except UserError:
            return None
        raw = cast(bytes | None, self.redis.hget(USERS_KEY, key))
        if raw:
            return cast(dict[str, Any], json.loads(raw))
        # `Ada` typed for `ada`: users are few, so look through them all.
        everyone = cast(dict[bytes, bytes], self.redis.hgetall(USERS_KEY))
        records = {k.decode(): v for k, v in everyone.items()}
        found = _same_name(key, records)
        return cast(dict[str, Any], json.loads(records[found])) if found else None


def _same_name(name: str, names: Mapping[str, Any]) -> str | None:
    """The one of `names` that is `name` but for letter case (None: none is)."""
    if name in names:
        return name
    folded = name.casefold()
    return next((other for other in names if other.casefold() == folded), None)


class LoginLimiter:
    """Failed logins counted per user name and per address, each in a window that expires."""

    def __init__(
        self,
        connection: redis.Redis,
        per_user: int = 5,
        per_address: int = 20,
        window_seconds: int = 15 * 60,
    ) -> None:
        self.redis = connection
        self.per_user = per_user
        self.per_address = per_address
        self.window = window_seconds

    def blocked_for(self, name: str, address: str) -> int:
        """Seconds until another try is allowed for this name from this address; 0 if now."""
        waits = []
        for key, limit in self._keys(name, address):
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                count, ttl = pipe.execute()
            if count is not None and int(count) >= limit:
                waits.append(max(int(ttl), 1))
        return max(waits, default=0)

    def failed(self, name: str, address: str) -> None:
        """Count one failed try against the name and the address."""
        for key, _ in self._keys(name, address):
            # The window starts with the first failure: SET NX gives it its expiry, INCR keeps it.
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=self.window, nx=True)
                pipe.incr(key)
                pipe.execute()

    def succeeded(self, name: str) -> None:
        """Forget the name's failures (the address keeps its count: it may be trying many)."""
        self.redis.delete(LOGIN_FAILS_USER_KEY.format(_counted_name(name)))

    def _keys(self, name: str, address: str) -> list[tuple[str, int]]:
        return [
            (LOGIN_FAILS_USER_KEY.format(_counted_name(name)), self.per_user),
            (LOGIN_FAILS_ADDRESS_KEY.format(address or "unknown"), self.per_address),
        ]


def _counted_name(name: str) -> str:
    # Any text may be typed as a name; count it in a bounded, case-folded form.
    return unicodedata.normalize("NFC", name.strip()).casefold()[:64]


def _user(record: dict[str, Any]) -> User:
    return User(record["name"], record["role"], record["epoch"], float(record["created_at"]))


@cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16), HASH_METHOD)
