"""Login throttling behind the reverse proxy: the client's own address, per (address, username)
and per address across usernames, through the real login view.

The proxy of docs/deployment.md (nginx, `$proxy_add_x_forwarded_for`) connects
from PROXY and appends the address it was connected from to whatever
X-Forwarded-For the client sent; `through_proxy` sends what gunicorn then sees.
"""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from members.models import Member
from members.throttle import client_address
from tests.conftest import settings_error
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # MemberFactory's
PROXY = "10.0.0.1"
ADMIN_HOME = "198.51.100.7"  # where the superuser logs in from
ATTACKER = "203.0.113.5"


@pytest.fixture
def behind_proxy(settings) -> None:  # type: ignore[no-untyped-def]
    """One trusted proxy in front, as in docs/deployment.md."""
    settings.THROWBACK_TRUSTED_PROXIES = 1


@pytest.fixture
def superuser() -> Member:
    return MemberFactory(username="admin", is_staff=True, is_superuser=True)


def through_proxy(
    username: str, password: str, client_ip: str, sent_header: str | None = None
) -> HttpResponse:
    """A login POST from client_ip via the proxy; sent_header is an X-Forwarded-For the client wrote."""
    forwarded = f"{sent_header}, {client_ip}" if sent_header else client_ip
    response: HttpResponse = Client().post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    return response


def direct(username: str, password: str, address: str, **headers: str) -> HttpResponse:
    """A login POST straight to gunicorn from address (no proxy in front)."""
    response: HttpResponse = Client().post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )
    return response


# --- whose address ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "counted"),
    [
        (0, PROXY, None, PROXY),
        (0, PROXY, ATTACKER, PROXY),  # no proxy trusted: the header is the client's own words
        (1, PROXY, ATTACKER, ATTACKER),
        (1, PROXY, f"{ADMIN_HOME}, {ATTACKER}", ATTACKER),  # the client's own entry is ignored
        (1, PROXY, f"1.1.1.1, 2.2.2.2,{ATTACKER}", ATTACKER),
        (2, PROXY, f"{ADMIN_HOME}, {ATTACKER}, 10.0.0.2", ATTACKER),  # a CDN, then the proxy
        (1, PROXY, None, PROXY),  # the proxy sent no header: its own address, never a guess
        (1, PROXY, "", PROXY),
        (2, PROXY, ATTACKER, ATTACKER),  # passed fewer proxies than trusted: the leftmost
        (1, PROXY, "unknown", PROXY),  # not an address: the nearest hop
        (1, PROXY, f" , {ATTACKER} ", ATTACKER),
        (1, PROXY, f"{ATTACKER}:4711", ATTACKER),
        (1, PROXY, "[2001:db8:1:2::99]:4711", "2001:db8:1:2::"),
        (1, PROXY, "2001:DB8:1:2:aaaa:bbbb:cccc:1", "2001:db8:1:2::"),  # one /64, one client
        (1, PROXY, "::ffff:203.0.113.5", ATTACKER),
        (0, "", None, None),  # a Unix socket: no address
    ],
)
def test_the_client_address_believes_only_the_trusted_proxies(
    settings,
    trusted: int,
    remote: str,
    forwarded: str | None,
    counted: str | None,  # type: ignore[no-untyped-def]
) -> None:
    settings.THROWBACK_TRUSTED_PROXIES = trusted
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=remote, **headers)
    assert client_address(request) == counted


# --- per (address, username), behind the proxy --------------------------------------------------------
def test_nobody_behind_the_proxy_can_lock_out_the_superuser(behind_proxy: None, superuser: Member) -> None:
    for _ in range(4):
        assert through_proxy("admin", "wrong", ATTACKER).status_code == 200  # the form, with its error
    assert through_proxy("admin", "wrong", ATTACKER).status_code == 429
    assert through_proxy("admin", PASSWORD, ATTACKER).status_code == 429  # locked, even when right
    # Writing the superuser's address into the header changes nothing: the proxy appends the real one.
    assert through_proxy("admin", "wrong", ATTACKER, sent_header=ADMIN_HOME).status_code == 429
    assert through_proxy("admin", PASSWORD, ADMIN_HOME).status_code == 302


def test_a_forged_forwarded_for_does_not_evade_the_limit(behind_proxy: None, superuser: Member) -> None:
    statuses = [
        through_proxy("admin", "wrong", ATTACKER, sent_header=f"192.0.2.{n}, 10.9.8.{n}").status_code
        for n in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert through_proxy("admin", PASSWORD, ADMIN_HOME).status_code == 302  # the lock is the attacker's


def test_without_a_trusted_proxy_the_header_is_ignored(superuser: Member) -> None:
    """THROWBACK_TRUSTED_PROXIES=0 (the default): a client talking to gunicorn directly cannot pick an address."""
    statuses = [
        direct("admin", "wrong", ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert direct("admin", PASSWORD, ADMIN_HOME).status_code == 302


# --- per address across usernames (password spraying) ---------------------------------------------------
def test_password_spraying_from_one_address_is_stopped(behind_proxy: None, settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT == 20
    names = [f"member{n:02}" for n in range(25)]
    for name in names:
        MemberFactory(username=name)
    statuses = [through_proxy(name, "Summer2026!", ATTACKER).status_code for name in names[:21]]
    assert statuses == [200] * 19 + [429, 429]
    # The address is locked for every username, even with the right password ...
    assert through_proxy(names[24], PASSWORD, ATTACKER).status_code == 429
    # ... and a forged header does not get it out.
    assert through_proxy(names[24], PASSWORD, ATTACKER, sent_header="192.0.2.1").status_code == 429
    # Everyone else behind the same proxy logs in.
    assert through_proxy(names[0], PASSWORD, ADMIN_HOME).status_code == 302


def test_logging_in_to_an_own_account_does_not_reset_the_spraying_count(behind_proxy: None) -> None:
    MemberFactory(username="mallory")
    for n in range(19):
        MemberFactory(username=f"member{n:02}")
        assert through_proxy(f"member{n:02}", "Summer2026!", ATTACKER).status_code == 200
    # A successful login resets the failures of that (address, username) pair only.
    assert through_proxy("mallory", PASSWORD, ATTACKER).status_code == 302
    MemberFactory(username="member19")
    assert through_proxy("member19", "Summer2026!", ATTACKER).status_code == 429


# --- settings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"THROWBACK_TRUSTED_PROXIES": "-1"}, "THROWBACK_TRUSTED_PROXIES must be at least 0, not -1"),
        ({"THROWBACK_TRUSTED_PROXIES": "one"}, "THROWBACK_TRUSTED_PROXIES must be an integer, not 'one'"),
        (
            {"THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT": "3"},
            "THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT must be at least 5, not 3",
        ),
        (
            {"THROWBACK_LOGIN_FAILURE_LIMIT": "30", "THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT": "25"},
            "THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT must be at least 30, not 25",
        ),
    ],
)
def test_bad_throttle_settings_stop_start_up(environment: dict[str, str], message: str) -> None:
    assert f"django.core.exceptions.ImproperlyConfigured: {message}\n" in settings_error(**environment)
