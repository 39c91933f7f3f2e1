"""Numbers a member controls (page numbers, years, ids in URLs) never answer 500.

The cases the outside review found are spelled out with their exact answers;
the property test then tries every URL and query parameter of every page and
API route, read from the URL resolver, so a route added later is covered too.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django.test import Client
from django.urls.converters import get_converters
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from faces.models import Photo
from members.models import Member
from tests.conftest import REPO
from tests.factories import AlbumFactory, MemberFactory, matched_photo, reference_with, unit
from tests.fake_oidc import FakeOIDC
from tests.routes import routes
from throwback.pagination import PAGE_MAX, page_number

pytestmark = pytest.mark.django_db

CLIENT_ID = "throwback-test"

HUGE = "99999999999999999999999"  # beyond PostgreSQL's bigint and C's long


def client_for(member: Member) -> Client:
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def library(media_root: Path, settings) -> tuple[Member, list[Photo]]:  # type: ignore[no-untyped-def]
    """A member matched in five photos of one 2019 album, two to a page (three pages)."""
    settings.THROWBACK_PHOTOS_PER_PAGE = 2
    member = MemberFactory(username="ada")
    reference = reference_with(member, unit(0))
    album = AlbumFactory(title="Trip", date=dt.date(2019, 8, 20))
    photos = [matched_photo(member, reference, album=album) for _ in range(5)]
    return member, photos


def tile_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a class="tile" href="/photos/(\d+)/"', page)]


@pytest.mark.parametrize("number", [HUGE, "9223372036854775807", "4611686018427387904", "0", "-1", "4"])
@pytest.mark.parametrize("path", ["/", "/years/2019/"])
def test_a_page_number_out_of_range_shows_the_last_page(
    library: tuple[Member, list[Photo]], path: str, number: str
) -> None:
    member, photos = library
    response = client_for(member).get(path, {"page": number})
    assert response.status_code == 200
    assert tile_ids(response.content.decode()) == [photos[4].pk]


@pytest.mark.parametrize("number", [HUGE, "9223372036854775807", "0", "-1", "4", "1" * 5000])
def test_the_api_answers_a_page_number_out_of_range_with_the_last_page(
    library: tuple[Member, list[Photo]], number: str
) -> None:
    member, photos = library
    response = client_for(member).get("/api/photos/", {"page": number})
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["results"]] == [photos[4].pk]
    assert (body["count"], body["next"], body["previous"]) == (
        5,
        None,
        "http://testserver/api/photos/?page=2",
    )


@pytest.mark.parametrize("number", ["two", "", "1.5", "²", "1e3", "0x10", " "])
def test_a_page_number_that_is_not_a_number_shows_the_first_page(
    library: tuple[Member, list[Photo]], number: str
) -> None:
    member, photos = library
    body = client_for(member).get("/api/photos/", {"page": number}).json()
    assert [item["id"] for item in body["results"]] == [photos[0].pk, photos[1].pk]
    assert body["previous"] is None


@pytest.mark.parametrize("year", ["0", "10000", "99999999999999999999", "00000", "-2019"])
def test_an_impossible_year_is_not_found(library: tuple[Member, list[Photo]], year: str) -> None:
    member, _ = library
    assert client_for(member).get(f"/years/{year}/").status_code == 404


@pytest.mark.parametrize(("year", "shown"), [("1", "1"), ("0001", "1"), ("9999", "9999"), ("02020", "2020")])
def test_a_possible_year_without_photos_is_an_empty_page(
    library: tuple[Member, list[Photo]], year: str, shown: str
) -> None:
    member, _ = library
    response = client_for(member).get(f"/years/{year}/")
    assert response.status_code == 200
    assert f"No photos of you from {shown}." in response.content.decode()


@pytest.mark.parametrize("number", [HUGE, "9223372036854775808"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/photos/{n}/"),
        ("GET", "/photos/{n}/file/"),
        ("GET", "/photos/{n}/download/"),
        ("POST", "/photos/{n}/not-me/"),
        ("POST", "/api/photos/{n}/not-me/"),
        ("GET", "/albums/{n}/download/"),
        ("GET", "/references/{n}/face.jpg"),
        ("POST", "/references/{n}/delete/"),
        ("DELETE", "/api/references/{n}/"),
    ],
)
def test_an_id_beyond_bigint_is_not_found(
    library: tuple[Member, list[Photo]], method: str, path: str, number: str
) -> None:
    member, _ = library
    response = client_for(member).generic(method, path.format(n=number))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (None, 1),
        ("1", 1),
        ("12", 12),
        (" 3 ", 3),
        ("+4", 4),
        ("007", 7),
        (5, 5),
        ("two", 1),
        ("1.5", 1),
        ("²", 1),
        ("٣", 1),  # a digit, but not ASCII: not a page number
        ("", 1),
        (True, 1),
        ("0", None),
        ("-1", None),
        (0, None),
        (str(PAGE_MAX), PAGE_MAX),
        (str(PAGE_MAX + 1), None),
        ("0" * 40 + "9", 9),
        (HUGE, None),
        ("9" * 5000, None),
    ],
)
def test_page_number_reads_what_a_member_may_type(raw: object, number: int | None) -> None:
    assert page_number(raw) == number


# --- every route, every parameter (hypothesis) ------------------------------------------------------
# Query parameters the views read (test_every_query_parameter_read_is_tried keeps
# this list complete for our own code); "next" is LoginView's and LogoutView's.
QUERY_NAMES = ["page", "next", "code", "state", "error", "account"]
# Numbers at the edges of what dates, C longs and PostgreSQL's integers hold, and other text.
NUMBER_EDGES = [
    "0",
    "-1",
    "1",
    "2019",
    "10000",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    HUGE,
    "9" * 5000,
]
TEXT_EDGES = ["1e308", "NaN", "", " ", "\x00", "%00", "../", "//evil.example/", "😀", "'; SELECT 1; --"]
ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
EXAMPLES_PER_ROUTE = 25


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_EDGES), st.integers(min_value=-(10**30), max_value=10**30).map(str)
    )


def parameter_values(converter_name: str) -> st.SearchStrategy[str]:
    """Text for one URL parameter: numbers of any size, what the converter's regex accepts, edge values."""
    converter = get_converters()[converter_name]
    return st.one_of(
        numbers(), st.from_regex(f"(?:{converter.regex})", fullmatch=True), st.sampled_from(TEXT_EDGES)
    )


def query_values() -> st.SearchStrategy[str]:
    """Text for one query parameter: numbers most often (they broke pages before), any other text."""
    return st.one_of(numbers(), numbers(), st.sampled_from(TEXT_EDGES), st.text(max_size=40))


@st.composite
def requests_for(draw: st.DrawFn, route: str) -> tuple[str, str, dict[str, str]]:
    """(method, path, query) for one route: every URL parameter filled in, some query parameters."""
    path = "/" + ROUTE_PARAMETER.sub(
        lambda match: quote(draw(parameter_values(match["converter"] or "str")), safe=""), route
    )
    query = draw(st.fixed_dictionaries({}, optional={name: query_values() for name in QUERY_NAMES}))
    query |= draw(st.dictionaries(st.text(min_size=1, max_size=10), query_values(), max_size=2))
    return draw(st.sampled_from(["GET", "GET", "POST"])), path, query


class _RolledBack(Exception):
    """Leaves the example's atomic block, undoing whatever the request changed."""


def answer(member: Member | None, method: str, path: str, query: dict[str, str]) -> int:
    """The status of one request, with the database as it was before it."""
    try:
        with transaction.atomic():
            client = Client()
            if member is not None:
                client.force_login(member)
            target = f"{path}?{urlencode(query)}" if query else path
            response = client.get(target) if method == "GET" else client.post(target)
            if response.streaming:
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
            raise _RolledBack(response.status_code)
    except _RolledBack as done:
        status: int = done.args[0]
        return status


@pytest.mark.slow
@pytest.mark.parametrize("who", ["member", "anonymous"])
@pytest.mark.parametrize("route", routes())
def test_no_parameter_of_any_route_gives_a_server_error(
    library: tuple[Member, list[Photo]],
    settings,
    route: str,
    who: str,  # type: ignore[no-untyped-def]
) -> None:
    """Any URL parameter and query string on any page or API route answers below 500.

    A view that raises fails the example with its traceback (the test client
    re-raises), so hypothesis shrinks it to the smallest input that breaks.
    """
    member = library[0] if who == "member" else None

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=requests_for(route))
    def no_server_error(request: tuple[str, str, dict[str, str]]) -> None:
        method, path, query = request
        status = answer(member, method, path, query)
        assert status < 500, f"{method} {path}?{urlencode(query)} answered {status}"

    # The Thalia routes do their work (not 404) against a running provider, so
    # what is tried is the member's input, not an outage (that has its own
    # tests in test_thalia_login.py).
    with FakeOIDC() as provider:
        provider.add_client(CLIENT_ID, {"http://testserver/accounts/thalia/callback/"})
        settings.THALIA_OIDC_URL = provider.base_url
        settings.THALIA_OIDC_CLIENT_ID = CLIENT_ID
        settings.THALIA_OIDC_CLIENT_SECRET = ""
        no_server_error()


def test_every_query_parameter_read_is_tried() -> None:
    """QUERY_NAMES holds every name the project's apps read from request.GET."""
    read = set()
    apps = [
        folder for folder in REPO.iterdir() if (folder / "apps.py").exists() or folder.name == "throwback"
    ]
    for source in (source for folder in apps for source in folder.rglob("*.py")):
        for line in source.read_text().splitlines():
            read.update(re.findall(r'request\.GET(?:\.get\(|\[)"(\w+)"', line))
            if "request.GET" in line:  # (request.GET.get(name) for name in ("code", "state"))
                for names in re.findall(r"for \w+ in \(([^)]*)\)", line):
                    read.update(re.findall(r'"(\w+)"', names))
    assert {"page", "code"} <= read  # the scan finds what is there
    assert sorted(read - set(QUERY_NAMES)) == []
