"""Who is calling: bearer tokens, the roles they carry, and how often each may call.

Every door of the hub (the patrol gateway, the SQL endpoint, the desks' work orders, review
decisions) asks for ``Authorization: Bearer <token>``. A token is random and is shown once,
when it is made; the book keeps only its SHA-256, which is enough for a secret of 256 random
bits (a slow password hash protects guessable secrets, and a token is not guessable). The
book is a SQLite file every door process reads: a revocation reaches each of them within
``GRIDHUB_TOKEN_CACHE_S`` seconds, without a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from foundation.errors import ConfigurationError, InputRejected
from foundation.settings import Settings

Role = Literal["device", "publisher", "desk", "analyst", "commander", "admin", "service"]
ROLES: tuple[Role, ...] = get_args(Role)
GRANTABLE_ROLES: tuple[Role, ...] = tuple(role for role in ROLES if role != "service")
"""``service`` is the hub's own processes, with a secret ``gridhub up`` makes at each start: no one grants it."""
SCOPE_OF_ROLE: dict[Role, str | None] = {"device": "worker", "publisher": "source", "desk": "department"}
"""The binding a role needs: a phone belongs to one worker, a publisher to one source, a desk to one department."""
MISS_RELOAD_S = 0.1
"""An unknown token makes the whole book be read again at most this often (so a flood of forged tokens costs
little); in between, an unknown token is looked up alone, so a token made a moment ago works at once."""
TOKEN_PREFIX = "ghb_"  # noqa: S105 - a marker that makes leaked tokens easy to find, not a secret


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a token's name, its role and what the role is bound to."""

    name: str
    role: Role
    source: str | None = None
    department: str | None = None
    worker: str | None = None

    @property
    def sees_personal_data(self) -> bool:
        """Whether the warehouse shows this caller personal data whole (and audits each such read)."""
        return self.role in ("commander", "service")


@dataclass(frozen=True)
class TokenInfo:
    """One row of ``gridhub tokens list``: never the token itself."""

    name: str
    role: str
    source: str | None
    department: str | None
    worker: str | None
    created_at: str
    revoked_at: str | None

    @property
    def bound_to(self) -> str | None:
        """The worker, source or department the token is bound to, if its role has one."""
        return self.source or self.department or self.worker


class Unauthenticated(InputRejected):
    """No token, or one the book does not know (or has revoked): HTTP 401."""

    reason_code = "unauthenticated"


class Forbidden(InputRejected):
    """A known caller asking for what its role or binding does not allow: HTTP 403."""

    reason_code = "forbidden"


class RateLimited(InputRejected):
    """One token calling faster than the settings allow: HTTP 429 with ``Retry-After``."""

    reason_code = "rate_limited"

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason, self.reason_code)
        self.retry_after_s = retry_after_s


def digest(token: str) -> str:
    """What the book stores of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer ...`` header; refuses a missing or malformed one."""
    if not header:
        raise Unauthenticated("send the token as 'Authorization: Bearer <token>' (`gridhub tokens add` makes one)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must read 'Bearer <token>'")
    return token.strip()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, source TEXT, department TEXT, worker TEXT,
    token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT
)
"""


class TokenBook:
    """The tokens of one hub, in a SQLite file readable only by its owner."""

    def __init__(self, path: Path, cache_s: float = 1.0, service_token: str | None = None) -> None:
        self.path = path
        self.cache_s = cache_s
        self._service_digest = digest(service_token) if service_token else None
        self._lock = threading.Lock()
        self._callers: dict[str, Caller] = {}
        self._loaded_at = float("-inf")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        fresh = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            connection.execute(_SCHEMA)
            with connection:
                yield connection
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(
                f"the token book {self.path} cannot be read ({exc}); move it aside and make the tokens again"
            ) from exc
        finally:
            connection.close()

    def add(
        self,
        name: str,
        role: Role,
        *,
        source: str | None = None,
        department: str | None = None,
        worker: str | None = None,
    ) -> str:
        """Make a token for ``name`` and return it: the only time it is ever shown."""
        if role not in GRANTABLE_ROLES:
            raise InputRejected(f"unknown role {role!r}; roles: {', '.join(GRANTABLE_ROLES)}", "unknown_role")
        bindings = {"source": source, "department": department, "worker": worker}
        needed = SCOPE_OF_ROLE.get(role)
        if needed and not bindings[needed]:
            raise InputRejected(f"a {role} token is bound to one {needed}: give --{needed}", "scope_required")
        extra = sorted(key for key, value in bindings.items() if value and key != needed)
        if extra:
            raise InputRejected(f"a {role} token takes no --{', --'.join(extra)}", "scope_not_allowed")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connection() as connection:
            taken = connection.execute("SELECT revoked_at FROM tokens WHERE name = ?", (name,)).fetchone()
            if taken and taken[0] is None:
                raise InputRejected(
                    f"a token named {name!r} exists; revoke it first or pick another name", "name_taken"
                )
            connection.execute("DELETE FROM tokens WHERE name = ?", (name,))
            connection.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (name, role, source, department, worker, digest(token), now),
            )
        self._loaded_at = float("-inf")
        return token

    def revoke(self, name: str) -> bool:
        """Revoke the token named ``name``; False when there is no such live token."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connection() as connection:
            changed = connection.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now, name)
            ).rowcount
        self._loaded_at = float("-inf")
        return bool(changed)

    def entries(self) -> list[TokenInfo]:
        """Every token made, live or revoked, by name."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT name, role, source, department, worker, created_at, revoked_at FROM tokens ORDER BY name"
            ).fetchall()
        return [TokenInfo(*row) for row in rows]

    def caller(self, token: str) -> Caller:
        """The caller a token belongs to; refuses an unknown or revoked one."""
        token_digest = digest(token)
        if self._service_digest and hmac.compare_digest(token_digest, self._service_digest):
            return Caller("gridhub", "service")
        with self._lock:
            age = time.monotonic() - self._loaded_at
            found = None if age > self.cache_s else self._callers.get(token_digest)
            if found is None and age > MISS_RELOAD_S:
                self._callers = self._live_callers()
                self._loaded_at = time.monotonic()
                found = self._callers.get(token_digest)
            elif found is None:  # a token made since the last reload works at once: one indexed lookup
                found = self._live_caller(token_digest)
        if found is None:
            raise Unauthenticated("the token is unknown or revoked; ask an admin for a new one (`gridhub tokens add`)")
        return found

    def _live_caller(self, token_digest: str) -> Caller | None:
        if not self.path.exists():
            return None
        with self._connection() as connection:
            row = connection.execute(
                "SELECT name, role, source, department, worker FROM tokens "
                "WHERE token_sha256 = ? AND revoked_at IS NULL",
                (token_digest,),
            ).fetchone()
        return Caller(*row) if row else None

    def _live_callers(self) -> dict[str, Caller]:
        if not self.path.exists():
            return {}
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT token_sha256, name, role, source, department, worker FROM tokens WHERE revoked_at IS NULL"
            ).fetchall()
        return {row[0]: Caller(row[1], row[2], row[3], row[4], row[5]) for row in rows}


class RateLimiter:
    """Calls per token in moving windows (``GRIDHUB_RATE_LIMIT``, e.g. ``20/second;600/minute``).

    Each token has its own windows, so one flooding phone is slowed without touching the others.
    """

    def __init__(self, limits: str) -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(limits)
        except ValueError as exc:
            raise ConfigurationError(
                f"GRIDHUB_RATE_LIMIT {limits!r} is not a limit like '20/second;600/minute'"
            ) from exc
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, caller: Caller) -> None:
        """Count one call of ``caller``; refuses it, with the seconds to wait, past any window's limit."""
        for item in self.items:
            if not self._limiter.test(item, caller.name):
                reset = self._limiter.get_window_stats(item, caller.name).reset_time
                wait = max(1, int(reset - time.time() + 0.999))
                raise RateLimited(f"{caller.name} sent more than {item}; wait {wait} s", wait)
        for item in self.items:
            self._limiter.hit(item, caller.name)


class Doorkeeper:
    """The one check every door makes: who calls (401), whether the role may (403), how often (429)."""

    def __init__(self, book: TokenBook, limiter: RateLimiter) -> None:
        self.book = book
        self.limiter = limiter

    def admit(self, authorization: str | None, *roles: Role) -> Caller:
        """The caller of a request's ``Authorization`` header, if its role is one of ``roles``."""
        caller = self.book.caller(bearer_token(authorization))
        if caller.role != "service":
            self.limiter.admit(caller)
        require_role(caller, *roles)
        return caller


def require_role(caller: Caller, *roles: Role) -> None:
    """Refuse a caller whose role is not among ``roles`` (the hub's own services pass every door)."""
    if caller.role != "service" and caller.role not in roles:
        raise Forbidden(f"{caller.name} has the role {caller.role}; this needs the role {' or '.join(roles)}")


def write_owner_only(path: Path, text: str) -> None:
    """Write a secret to a new file only its owner can read (created so, never widened after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def doorkeeper_of(settings: Settings) -> Doorkeeper:
    """The doorkeeper a door process builds from its settings: the token book, its cache and the rate limit."""
    service = settings.service_token.get_secret_value() if settings.service_token else None
    return Doorkeeper(
        TokenBook(settings.tokens_file, settings.token_cache_s, service), RateLimiter(settings.rate_limit)
    )


def require_source(caller: Caller, source: str) -> None:
    """Refuse to publish as ``source`` for anyone but that source's publisher, an admin or the hub itself."""
    require_role(caller, "publisher", "admin")
    if caller.role == "publisher" and caller.source != source:
        raise Forbidden(f"{caller.name} publishes as {caller.source}; it cannot publish as {source}")


def caller_token(settings: Settings) -> str:
    """The caller's own token (``GRIDHUB_TOKEN``); refuses, saying where to get one, when it is unset."""
    if settings.service_token:
        return settings.service_token.get_secret_value()
    if settings.token is None:
        hint = (
            f"`gridhub up` wrote an admin token to {settings.admin_token_file}; "
            if settings.admin_token_file.exists()
            else ""
        )
        raise Unauthenticated(
            f"set GRIDHUB_TOKEN to your token ({hint}an admin makes one with `gridhub tokens add NAME --role ROLE`)"
        )
    return settings.token.get_secret_value()
