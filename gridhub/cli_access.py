"""``gridhub tokens`` and ``gridhub audit``: who may call the hub, and what they did.

Tokens are managed on the token book in the data folder by an admin: the command asks for an
admin's own token (``GRIDHUB_TOKEN``) first. ``gridhub up`` makes the first admin token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from foundation.access import GRANTABLE_ROLES, TokenBook, caller_token, require_role, write_owner_only
from foundation.settings import Settings
from gridhub.cli_common import DataDir, UsageError, console, errors, print_result
from gridhub.cli_common import command_settings as _settings

tokens_app = typer.Typer(help="Tokens: who may call the hub, in which role.", no_args_is_help=True)


def _admin_book(settings: Settings) -> TokenBook:
    """The token book, once the caller has shown an admin's token."""
    book = TokenBook(settings.tokens_file, settings.token_cache_s)
    require_role(book.caller(caller_token(settings)), "admin")
    return book


def ensure_admin_token(settings: Settings) -> Path | None:
    """Make the first admin token, on a hub's first start; return the owner-only file it is in.

    Nothing is made while the book holds a live admin token (the file written then may have been
    moved away on purpose); a book without one gets a new ``admin`` token.
    """
    book = TokenBook(settings.tokens_file, settings.token_cache_s)
    if any(entry.role == "admin" and entry.revoked_at is None for entry in book.entries()):
        return None
    token = book.add("admin", "admin")
    settings.admin_token_file.unlink(missing_ok=True)
    write_owner_only(settings.admin_token_file, token + "\n")
    return settings.admin_token_file


@tokens_app.command("init")
def tokens_init(data_dir: DataDir = None) -> None:
    """Make the first admin token, as `gridhub up` does on its first start (needs no token; only once)."""
    settings = _settings(data_dir=data_dir)
    made = ensure_admin_token(settings)
    if made is None:
        raise UsageError("the token book already has a live admin token; an admin makes more with `gridhub tokens add`")
    console.print(f"admin token written to {made.resolve()} (owner-only); read it once, keep it safe")


@tokens_app.command("add")
def tokens_add(
    name: Annotated[str, typer.Argument(help="Who the token is for, e.g. phone-GW017 or desk-water.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(GRANTABLE_ROLES)}.")],
    source: Annotated[str | None, typer.Option(help="A publisher's source, e.g. civil-affairs.")] = None,
    department: Annotated[str | None, typer.Option(help="A desk's department, e.g. water.")] = None,
    worker: Annotated[str | None, typer.Option(help="A device's grid worker, e.g. GW017.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Make a token and print it, once: only its hash is kept."""
    if role not in GRANTABLE_ROLES:
        raise UsageError(f"--role must be one of {', '.join(GRANTABLE_ROLES)}, not {role!r}")
    book = _admin_book(_settings(data_dir=data_dir))
    token = book.add(name, role, source=source, department=department, worker=worker)  # type: ignore[arg-type]
    errors.print(f"token for {name} ({role}); shown only now, keep it safe:")
    console.print(token, markup=False, highlight=False)


@tokens_app.command("list")
def tokens_list(
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Every token made, live or revoked (never the tokens themselves)."""
    entries = _admin_book(_settings(data_dir=data_dir)).entries()
    print_result(
        {
            "columns": ["name", "role", "bound_to", "created_at", "revoked_at"],
            "rows": [
                [
                    entry.name,
                    entry.role,
                    entry.source or entry.department or entry.worker,
                    entry.created_at,
                    entry.revoked_at,
                ]
                for entry in entries
            ],
        },
        output,
        title="tokens",
    )


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name, as `gridhub tokens list` shows it.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token: every door refuses it within GRIDHUB_TOKEN_CACHE_S seconds, without a restart."""
    settings = _settings(data_dir=data_dir)
    if not _admin_book(settings).revoke(name):
        raise UsageError(f"no live token named {name!r}; `gridhub tokens list` shows them")
    console.print(f"revoked {name}; the doors refuse it within {settings.token_cache_s:g} s")


def audit(
    limit: Annotated[int, typer.Option(help="The latest this many entries.", min=1)] = 100,
    caller: Annotated[str | None, typer.Option("--caller", help="Only this caller's entries.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """The audit trail (admin): every query and read of personal data, who, when, what, rows returned."""
    from warehouse.reader import audit as read_audit

    print_result(read_audit(_settings(data_dir=data_dir), limit, caller), output, title="audit")
