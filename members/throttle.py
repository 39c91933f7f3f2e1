"""Login throttling (django-axes): who the client is behind the reverse proxy, and the two limits.

axes locks a (username, address) pair after THROWBACK_LOGIN_FAILURE_LIMIT failed
logins, so a stranger cannot lock a member (or the superuser) out from elsewhere.
LoginThrottleHandler adds a limit per address across usernames
(THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT) against password spraying. Both need the
client's own address, which behind a proxy is not REMOTE_ADDR: client_address()
reads it from X-Forwarded-For, believing only the hops of the trusted proxies.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest

# One end user commonly holds a whole IPv6 /64: counting single addresses there
# would give an attacker 2⁶⁴ fresh addresses to try from.
IPV6_CLIENT_PREFIX = 64
_WITH_PORT = re.compile(r"\[(?P<v6>[^\]]+)\](?::\d+)?|(?P<v4>[0-9.]+):\d+")


def client_address(request: HttpRequest) -> str | None:
    """The address the login limits count for this request (axes' AXES_CLIENT_IP_CALLABLE).

    With THROWBACK_TRUSTED_PROXIES = 0, REMOTE_ADDR: no header a client sends is
    believed. With N, the N-th address from the right of X-Forwarded-For: each
    trusted proxy appends the address it was connected from, so everything left
    of that is what the client wrote itself and is ignored. A request that
    passed fewer proxies than that (the header shorter than N) gets the leftmost
    address, and one whose chosen entry is not an address gets REMOTE_ADDR.
    IPv6 addresses are counted by their /64 prefix, IPv4-mapped ones as IPv4.
    None when there is no address at all (a Unix socket).
    """
    remote = request.META.get("REMOTE_ADDR", "")
    trusted: int = settings.THROWBACK_TRUSTED_PROXIES
    chain = [remote]
    if trusted:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        chain = [hop.strip() for hop in forwarded.split(",") if hop.strip()] + chain
    chosen = chain[max(len(chain) - 1 - trusted, 0)]
    return _counted_as(chosen) or _counted_as(remote)


def _counted_as(text: str) -> str | None:
    """text as the address the limits count (see client_address), or None when it is not one."""
    match = _WITH_PORT.fullmatch(text)
    if match:
        text = match["v6"] or match["v4"]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), IPV6_CLIENT_PREFIX), strict=False).network_address)
    return str(address)


class LoginThrottleHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """axes' database handler plus a limit on failures per address across usernames.

    AXES_LOCKOUT_PARAMETERS stays [["username", "ip_address"]], so axes counts,
    and a successful login resets, only the pair; here an address whose failed
    logins for any usernames reach THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT within
    the cool-off period counts as locked too. A login that succeeds from that
    address does not reset that count (it would let a sprayer who owns one
    account wipe it).
    """

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        failures: int = super().get_failures(request, credentials)
        address = getattr(request, "axes_ip_address", None)
        if address is None:
            return failures
        from_address = (
            AccessAttempt.objects.filter(
                ip_address=address, attempt_time__gte=get_cool_off_threshold(request)
            ).aggregate(total=Sum("failures_since_start"))["total"]
            or 0
        )
        if from_address >= settings.THROWBACK_LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(failures, int(get_failure_limit(request, credentials)))
        return failures
