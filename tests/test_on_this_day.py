""" "On this day": photos of the member from albums dated on today's calendar day in earlier years."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from faces.models import Album
from faces.selectors import member_on_this_day
from faces.services import photo_dismiss
from tests.factories import AlbumFactory, MemberFactory, matched_photo, reference_with, unit
from thalia.models import AlbumAccess

pytestmark = pytest.mark.django_db


def photos_on(member, reference, date: str, count: int = 1, **album: object) -> list[int]:  # type: ignore[no-untyped-def]
    dated = AlbumFactory(date=date, title=album.pop("title", f"Album of {date}"), **album)
    return [matched_photo(member, reference, album=dated).pk for _ in range(count)]


def shown(member, today: dt.date) -> list[tuple[int, list[str], int, int]]:  # type: ignore[no-untyped-def]
    return [
        (group.years_ago, group.album_titles, group.total, len(group.photos))
        for group in member_on_this_day(member, today=today)
    ]


def test_photos_of_this_calendar_day_in_earlier_years_newest_first() -> None:
    ada = MemberFactory(username="ada")
    selfie = reference_with(ada, unit(1))
    photos_on(ada, selfie, "2023-12-06", 2, title="Sinterklaas")
    photos_on(ada, selfie, "2023-12-06", 1, title="Drinks")
    photos_on(ada, selfie, "2025-12-06", 8, title="Party")  # more than the 6 shown
    photos_on(ada, selfie, "2026-12-06", title="Today")  # this year: not a throwback
    photos_on(ada, selfie, "2023-12-07", title="Next day")
    photos_on(ada, selfie, "2022-12-05", title="Day before")
    bo = MemberFactory(username="bo")
    photos_on(bo, reference_with(bo, unit(2)), "2021-12-06", title="Bo's")

    assert shown(ada, dt.date(2026, 12, 6)) == [
        (1, ["Party"], 8, 6),
        (3, ["Sinterklaas", "Drinks"], 3, 3),
    ]
    assert shown(ada, dt.date(2026, 12, 8)) == []
    assert shown(bo, dt.date(2026, 12, 6)) == [(5, ["Bo's"], 1, 1)]


def test_the_rules_of_my_photos_apply_hidden_albums_not_me_and_album_access() -> None:
    ada = MemberFactory(username="ada", thalia_id="41")
    selfie = reference_with(ada, unit(1))
    photos_on(ada, selfie, "2020-06-01", title="Hidden", hidden=True)
    photos_on(ada, selfie, "2020-06-01", title="Gone", missing=True)
    [dismissed] = photos_on(ada, selfie, "2021-06-01", title="Not me")
    assert photo_dismiss(member=ada, photo_id=dismissed)
    website = dict(source=Album.Source.CONCREXIT)
    photos_on(ada, selfie, "2022-06-01", title="Members only", source_id="members-only", **website)
    photos_on(ada, selfie, "2023-06-01", title="Open", source_id="open", **website)
    AlbumAccess.objects.create(member=ada, album_slug="open")

    assert shown(ada, dt.date(2026, 6, 1)) == [(3, ["Open"], 1, 1)]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # No 29th this year: the leap day's photos show on the 28th too.
        (dt.date(2025, 2, 28), [(1, ["Leap day"], 1, 1), (2, ["Feb 28"], 1, 1)]),
        (dt.date(2025, 3, 1), []),
        (dt.date(2028, 2, 29), [(4, ["Leap day"], 1, 1)]),
        (dt.date(2028, 2, 28), [(5, ["Feb 28"], 1, 1)]),  # a leap year: the 29th waits for its day
    ],
)
def test_photos_of_29_february_come_round_on_the_28th_in_other_years(
    today: dt.date, expected: list[tuple[int, list[str], int, int]]
) -> None:
    ada = MemberFactory(username="ada")
    selfie = reference_with(ada, unit(1))
    photos_on(ada, selfie, "2024-02-29", title="Leap day")
    photos_on(ada, selfie, "2023-02-28", title="Feb 28")
    assert shown(ada, today) == expected


def years_back(today: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February: the nearest earlier leap year's)."""
    while True:
        try:
            return today.replace(year=today.year - years)
        except ValueError:
            years += 1


def test_the_landing_page_shows_on_this_day_only_when_there_is_something() -> None:
    ada = MemberFactory(username="ada")
    client = Client()
    client.force_login(ada)
    selfie = reference_with(ada, unit(1))
    today = timezone.localdate()
    photos_on(ada, selfie, years_back(today - dt.timedelta(days=1), 3).isoformat(), title="Yesterday")
    assert "On this day" not in client.get("/").content.decode()

    back = years_back(today, 3)
    [photo] = photos_on(ada, selfie, back.isoformat(), title="Trip")
    page = client.get("/").content.decode()
    assert '<h2 id="on-this-day-title">On this day</h2>' in page
    assert f"<strong>{today.year - back.year} years ago today:</strong> Trip · 1 photo" in page
    assert f'<a href="/photos/{photo}/"><img src="/photos/{photo}/file/"' in page
