"""Users in Redis, `ivr users`, the login limiter, and the masking of numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.commands.users import users as users_command
from ivr.dashboard.masking import mask_number
from ivr.dashboard.users import USERS_KEY, LoginLimiter, UserError, Users
from tests.conftest import AUTH_TOKEN
from tests.dashboard.conftest import PASSWORD, PINNED


def test_users_are_kept_with_hashed_passwords(connection: redis.Redis) -> None:
    users = Users(connection)
    lan = users.add("Lan.Trần", "supervisor", PASSWORD, PINNED)
    stored = connection.hget(USERS_KEY, "Lan.Trần")
    assert stored is not None and PASSWORD.encode() not in stored
    assert json.loads(stored)["password_hash"].startswith("scrypt:")
    assert users.authenticate("Lan.Trần", PASSWORD) == lan
    assert users.authenticate("Lan.Trần", PASSWORD + "x") is None
    assert users.authenticate("nobody", PASSWORD) is None
    assert [u.name for u in users.all()] == ["Lan.Trần"]
    assert lan.may("viewer") and lan.may("supervisor") and not lan.may("admin")


def test_bad_users_are_refused_and_change_nothing(connection: redis.Redis) -> None:
    users = Users(connection)
    users.add("omar", "viewer", PASSWORD, PINNED)
    before = connection.hgetall(USERS_KEY)
    refused = [("omar", "viewer", PASSWORD), ("bad name", "viewer", PASSWORD)]
    refused += [("mona", "boss", PASSWORD), ("mona", "viewer", "short")]
    refused += [(".", "viewer", PASSWORD), ("..", "admin", PASSWORD)]  # a URL's dot segments
    for name, role, password in refused:
        with pytest.raises(UserError):
            users.add(name, role, password, PINNED)
    with pytest.raises(UserError):
        users.remove("mona")
    assert connection.hgetall(USERS_KEY) == before


def test_names_are_told_apart_without_letter_case(connection: redis.Redis) -> None:
    users = Users(connection)
    lan = users.add("Lan.Trần", "supervisor", PASSWORD, PINNED)
    with pytest.raises(UserError, match=r"a user 'Lan\.Trần' already exists"):
        users.add("LAN.TRẦN", "admin", PASSWORD, PINNED)
    assert users.authenticate("lan.trần", PASSWORD) == lan  # typed as it comes
    assert users.get("LAN.trần") == lan
    users.add("omar", "admin", PASSWORD, PINNED)
    users.remove("LAN.TRẦN")
    assert [u.name for u in users.all()] == ["omar"]


def test_adding_again_gives_a_new_epoch(connection: redis.Redis) -> None:
    users = Users(connection)
    first = users.add("tom", "admin", PASSWORD, PINNED)
    assert users.ensure("tom", "admin", PASSWORD, PINNED) == first
    replaced = users.ensure("tom", "admin", "another password", PINNED)
    assert replaced.epoch != first.epoch and users.authenticate("tom", "another password")


def test_limiter_counts_failures_in_an_expiring_window(connection: redis.Redis) -> None:
    limiter = LoginLimiter(connection, per_user=2, per_address=3, window_seconds=60)
    assert limiter.blocked_for("lan", "10.0.0.1") == 0
    limiter.failed("lan", "10.0.0.1")
    limiter.failed("LAN", "10.0.0.2")  # names count case-folded
    wait = limiter.blocked_for("lan", "10.0.0.3")
    assert 0 < wait <= 60
    assert limiter.blocked_for("minh", "10.0.0.1") == 0
    limiter.failed("minh", "10.0.0.1")
    limiter.failed("huong", "10.0.0.1")
    assert limiter.blocked_for("tom", "10.0.0.1") > 0  # three from one address
    ttls = [connection.ttl(k) for k in connection.keys("ivr:dashboard:login-fails:*")]
    assert ttls and all(0 < ttl <= 60 for ttl in ttls)
    limiter.succeeded("lan")
    assert limiter.blocked_for("lan", "10.0.0.3") == 0


@pytest.mark.parametrize(
    ("given", "shown"),
    [("+84901234567", "+84•••••4567"), ("+447700900123", "+44••••••0123"),
     ("123456", "••••56"), ("sip:desk@pbx.example.com", "sip:•••@pbx.example.com"),
     ("anonymous", "anonymous"), ("minh", "minh")],
)  # fmt: skip
def test_numbers_are_masked_for_viewers(given: str, shown: str) -> None:
    assert mask_number(given) == shown


def test_cli_adds_lists_and_removes_users(
    runner: CliRunner, redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    env = {"REDIS_URL": redis_url, "IVR_DATA_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    nobody = runner.invoke(users_command, ["list"], env=env)
    assert nobody.exit_code == 0 and nobody.stdout == "" and "no users" in nobody.stderr
    assert json.loads(runner.invoke(users_command, ["list", "--json"], env=env).stdout) == {
        "users": []}  # fmt: skip
    added = runner.invoke(users_command, ["add", "Nguyễn", "--role", "viewer", "--password-stdin"],
                          input=PASSWORD + "\n", env=env)  # fmt: skip
    assert added.exit_code == 0, added.output
    prompted = runner.invoke(users_command, ["add", "tom", "--role", "admin"],
                             input=f"{PASSWORD}\n{PASSWORD}\n", env=env)  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    listed = runner.invoke(users_command, ["list", "--json"], env=env)
    assert [(u["name"], u["role"]) for u in json.loads(listed.output)["users"]] == [
        ("Nguyễn", "viewer"), ("tom", "admin")]  # fmt: skip
    assert Users(connection).authenticate("Nguyễn", PASSWORD) is not None
    again = runner.invoke(users_command, ["add", "tom", "--role", "viewer", "--password-stdin"],
                          input=PASSWORD + "\n", env=env)  # fmt: skip
    assert again.exit_code == 1 and "already exists" in again.output
    unasked = runner.invoke(users_command, ["add", "tom", "--role", "viewer"], input="", env=env)
    assert unasked.exit_code == 1 and "already exists" in unasked.output  # before any prompt
    assert "Password" not in unasked.output
    dots = runner.invoke(users_command, ["add", "..", "--role", "viewer"], input="", env=env)
    assert dots.exit_code == 1 and "more than dots" in dots.output
    short = runner.invoke(users_command, ["add", "mona", "--role", "viewer", "--password-stdin"],
                          input="short\n", env=env)  # fmt: skip
    assert short.exit_code == 1 and "at least 8" in short.output
    last = runner.invoke(users_command, ["remove", "tom"], env=env)
    assert last.exit_code == 1 and "last admin" in last.output
    Users(connection).add("ada", "admin", PASSWORD, PINNED)
    assert runner.invoke(users_command, ["remove", "tom"], env=env).exit_code == 0
    gone = runner.invoke(users_command, ["remove", "tom"], env=env)
    assert gone.exit_code == 1 and "no user" in gone.output
    assert [u.name for u in Users(connection).all()] == ["Nguyễn", "ada"]


def test_cli_says_what_is_wrong_with_redis_url(runner: CliRunner, tmp_path: Path) -> None:
    env = {"REDIS_URL": "redis+bogus://x", "IVR_DATA_DIR": str(tmp_path)}
    for args in (["list"], ["remove", "tom"], ["add", "tom", "--role", "viewer"]):
        result = runner.invoke(users_command, args, input="", env=env)
        assert result.exit_code == 1 and "REDIS_URL 'redis+bogus://x'" in result.output, args
