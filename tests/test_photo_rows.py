"""The photos page's SQL (faces.selectors.photo_page, member_years) against the ORM's matched_to.

The pages and GET /api/photos/ read a member's photos with hand-written SQL
for speed; PhotoQuerySet.matched_to stays the definition of what a member
may see. These tests hold the two to the same photos, order and counts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.db.models.functions import ExtractYear

from faces.models import Album, Dismissal, FaceEncoding, Match, Photo
from faces.selectors import member_years, photo_page
from members.models import Member
from tests.factories import AlbumFactory, MemberFactory, matched_photo, reference_with, unit
from thalia.models import AlbumAccess

pytestmark = pytest.mark.django_db


def library(member: Member) -> dict[str, Photo]:
    """Photos of every kind a member may or may not see."""
    first, second = reference_with(member, unit(1)), reference_with(member, unit(2))
    gala = AlbumFactory(title="Gala", date=dt.date(2024, 5, 1))
    trip = AlbumFactory(title="Trip", date=dt.date(2019, 8, 3))
    undated = AlbumFactory(title="Folder")
    website_allowed = AlbumFactory(
        source=Album.Source.CONCREXIT, source_id=f"{member.username}-allowed", date=dt.date(2023, 1, 2)
    )
    website_other = AlbumFactory(
        source=Album.Source.CONCREXIT, source_id=f"{member.username}-other", date=dt.date(2023, 3, 4)
    )
    photos = {
        "gala1": matched_photo(member, first, album=gala),
        "gala2": matched_photo(member, first, album=gala),
        "trip": matched_photo(member, first, album=trip),
        "undated": matched_photo(member, first, album=undated),
        "dismissed": matched_photo(member, first, album=gala),
        "hidden": matched_photo(member, first, album=AlbumFactory(hidden=True, date=dt.date(2024, 1, 1))),
        "missing": matched_photo(member, first, album=AlbumFactory(missing=True)),
        "allowed": matched_photo(member, first, album=website_allowed),
        "other": matched_photo(member, first, album=website_other),
    }
    # Matched by both selfies: still one photo.
    twice = photos["gala2"]
    matched_photo(member, second, album=gala)  # a photo of the second selfie only
    face = FaceEncoding.objects.filter(photo=twice).first()
    assert face is not None
    Match.objects.create(member=member, reference=second, face=face, distance=0.1)
    Dismissal.objects.create(member=member, photo=photos["dismissed"])
    AlbumAccess.objects.create(member=member, album_slug=f"{member.username}-allowed")
    return photos


def orm_ids(member: Member, year: int | None = None) -> list[int]:
    photos = Photo.objects.matched_to(member)
    if year is not None:
        photos = photos.filter(album__date__year=year)
    return list(photos.values_list("id", flat=True))


def sql_ids(member: Member, year: int | None = None) -> list[int]:
    page = photo_page(member, "1", year=year)
    return [row.pk for row in page.object_list]


@pytest.mark.parametrize("thalia", [False, True])
def test_the_page_sql_shows_what_matched_to_shows_in_its_order(thalia: bool, media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    if thalia:
        Member.objects.filter(pk=ada.pk).update(thalia_id="42")
        ada.refresh_from_db()
    photos = library(ada)
    bob = MemberFactory(username="bob")
    library(bob)  # another member's photos and dismissals change nothing for Ada
    expected = orm_ids(ada)
    assert sql_ids(ada) == expected
    assert photos["dismissed"].pk not in expected and photos["hidden"].pk not in expected
    assert photos["missing"].pk not in expected
    assert (photos["other"].pk in expected) is not thalia  # a Thalia member sees allowed albums only
    assert photos["allowed"].pk in expected
    assert len(expected) == len(set(expected))
    for year in (2024, 2023, 2019, 2001):
        assert sql_ids(ada, year) == orm_ids(ada, year)
    assert photo_page(ada, "1").paginator.count == len(expected)
    dated = (
        Photo.objects.matched_to(ada)
        .filter(album__date__isnull=False)
        .order_by()
        .values_list(ExtractYear("album__date"), flat=True)
    )
    years = sorted({y: list(dated).count(y) for y in dated}.items(), reverse=True)
    assert member_years(ada) == years


def test_pages_out_of_range_behave_as_paginator_get_page(settings, media_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_PHOTOS_PER_PAGE = 3
    ada = MemberFactory(username="ada")
    library(ada)
    expected = orm_ids(ada)
    pages = [expected[i : i + 3] for i in range(0, len(expected), 3)]
    for number, wanted in [
        ("1", 1),
        ("2", 2),
        (None, 1),
        ("x", 1),
        ("1.5", 1),
        ("0", len(pages)),
        ("-3", len(pages)),
        ("99", len(pages)),
    ]:
        page = photo_page(ada, number)
        assert page.number == wanted
        assert [row.pk for row in page.object_list] == pages[wanted - 1]
        assert page.paginator.count == len(expected) and page.paginator.num_pages == len(pages)
    empty = photo_page(MemberFactory(username="bob"), "5")
    assert empty.number == 1 and list(empty.object_list) == [] and empty.paginator.count == 0
