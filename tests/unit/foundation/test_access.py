"""Tokens: made once and kept only as a hash, bound to their scope, revoked within the cache time, rate limited."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from foundation.access import (
    Caller,
    Doorkeeper,
    Forbidden,
    RateLimited,
    RateLimiter,
    TokenBook,
    Unauthenticated,
    bearer_token,
    digest,
    require_source,
    write_owner_only,
)
from foundation.errors import ConfigurationError, InputRejected


@pytest.fixture
def book(tmp_path: Path) -> TokenBook:
    return TokenBook(tmp_path / "tokens.sqlite", cache_s=0.2)


def test_a_token_is_stored_only_as_its_hash_in_an_owner_only_file(book: TokenBook) -> None:
    token = book.add("desk-water", "desk", department="water")
    content = book.path.read_bytes()
    assert token.encode() not in content
    assert digest(token).encode() in content
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600
    assert book.caller(token) == Caller("desk-water", "desk", department="water")


@pytest.mark.parametrize(
    ("role", "bindings", "code"),
    [
        ("device", {}, "scope_required"),
        ("publisher", {}, "scope_required"),
        ("desk", {"worker": "GW001"}, "scope_required"),
        ("analyst", {"source": "police"}, "scope_not_allowed"),
        ("device", {"worker": "GW001", "department": "water"}, "scope_not_allowed"),
        ("root", {}, "unknown_role"),
        ("service", {}, "unknown_role"),
    ],
)
def test_a_role_gets_exactly_the_binding_it_needs(book: TokenBook, role: str, bindings: dict, code: str) -> None:
    with pytest.raises(InputRejected) as refused:
        book.add("x", role, **bindings)  # type: ignore[arg-type]
    assert refused.value.reason_code == code


def test_a_live_name_is_not_reused_but_a_revoked_one_is(book: TokenBook) -> None:
    first = book.add("analyst-1", "analyst")
    with pytest.raises(InputRejected, match="exists"):
        book.add("analyst-1", "analyst")
    assert book.revoke("analyst-1")
    second = book.add("analyst-1", "analyst")
    with pytest.raises(Unauthenticated):
        book.caller(first)
    assert book.caller(second).name == "analyst-1"


def test_a_revocation_reaches_another_process_within_the_cache_time(book: TokenBook) -> None:
    token = book.add("phone-GW001", "device", worker="GW001")
    door = TokenBook(book.path, cache_s=0.2)  # another door process reading the same book
    assert door.caller(token).worker == "GW001"
    assert TokenBook(book.path).revoke("phone-GW001")
    time.sleep(0.25)
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        door.caller(token)
    assert [entry.revoked_at is not None for entry in book.entries()] == [True]


def test_an_unknown_token_and_a_malformed_header_are_unauthenticated(book: TokenBook) -> None:
    with pytest.raises(Unauthenticated):
        book.caller("ghb_not-a-token")
    for header in (None, "", "Basic dXNlcjpwYXNz", "Bearer ", "token-without-scheme"):
        with pytest.raises(Unauthenticated):
            bearer_token(header)
    assert bearer_token("bearer  abc ") == "abc"


def test_the_service_token_passes_every_door_and_is_never_in_the_book(tmp_path: Path) -> None:
    door = Doorkeeper(TokenBook(tmp_path / "tokens.sqlite", service_token="s3cret"), RateLimiter("1/minute"))
    for _ in range(3):
        assert door.admit("Bearer s3cret", "admin").role == "service"
    assert not (tmp_path / "tokens.sqlite").exists()


def test_a_door_refuses_another_role_with_the_reason(book: TokenBook) -> None:
    token = book.add("analyst-2", "analyst")
    door = Doorkeeper(book, RateLimiter("100/second"))
    with pytest.raises(Forbidden, match="analyst-2 has the role analyst; this needs the role device or desk"):
        door.admit(f"Bearer {token}", "device", "desk")
    assert door.admit(f"Bearer {token}", "analyst").name == "analyst-2"


def test_a_flood_from_one_token_is_limited_while_another_token_passes(book: TokenBook) -> None:
    noisy = book.add("phone-GW001", "device", worker="GW001")
    quiet = book.add("phone-GW002", "device", worker="GW002")
    door = Doorkeeper(book, RateLimiter("5/second;100/minute"))
    for _ in range(5):
        door.admit(f"Bearer {noisy}", "device")
    with pytest.raises(RateLimited) as limited:
        door.admit(f"Bearer {noisy}", "device")
    assert limited.value.retry_after_s >= 1
    assert door.admit(f"Bearer {quiet}", "device").worker == "GW002"


def test_a_rate_limit_that_does_not_parse_stops_with_the_variable_named() -> None:
    with pytest.raises(ConfigurationError, match="GRIDHUB_RATE_LIMIT"):
        RateLimiter("lots")


def test_a_publisher_publishes_only_as_its_source() -> None:
    civil = Caller("civil-affairs-system", "publisher", source="civil-affairs")
    require_source(civil, "civil-affairs")
    with pytest.raises(Forbidden, match="cannot publish as police"):
        require_source(civil, "police")
    require_source(Caller("ops", "admin"), "police")
    with pytest.raises(Forbidden):
        require_source(Caller("staff", "commander"), "police")


def test_a_secret_file_is_created_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    write_owner_only(path, "ghb_x\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_owner_only(path, "ghb_y\n")


def test_a_token_made_after_a_door_read_the_book_works_at_once(book: TokenBook) -> None:
    door = TokenBook(book.path, cache_s=60)
    first = book.add("phone-GW001", "device", worker="GW001")
    assert door.caller(first).worker == "GW001"  # the door has read the book and caches it for a minute
    time.sleep(0.15)
    later = TokenBook(book.path).add("phone-GW002", "device", worker="GW002")
    assert door.caller(later).worker == "GW002"


def test_a_token_made_the_instant_after_a_reload_works_too_and_a_revoked_one_does_not(book: TokenBook) -> None:
    door = TokenBook(book.path, cache_s=60)
    with pytest.raises(InputRejected):
        door.caller("ghb_forged")  # an unknown token: the door has just read the whole book
    fresh = book.add("phone-GW003", "device", worker="GW003")
    assert door.caller(fresh).worker == "GW003"  # within the reload throttle, looked up alone
    gone = book.add("phone-GW004", "device", worker="GW004")
    book.revoke("phone-GW004")
    with pytest.raises(InputRejected):
        door.caller(gone)
