"""The member pages: landing, consent, photos, years, one photo, downloads."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from faces.models import Album, Dismissal, Photo
from faces.selectors import member_years
from members.models import Member
from tests.factories import AlbumFactory, MemberFactory, jpeg, matched_photo, reference_with, unit
from tests.fake_concrexit import FakeConcrexit, _render

pytestmark = pytest.mark.django_db


def client_for(member: Member) -> Client:
    client = Client()
    client.force_login(member)
    return client


def stored(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


# --- landing and consent -------------------------------------------------------------
def test_the_landing_page_explains_and_links_to_the_login(settings) -> None:  # type: ignore[no-untyped-def]
    page = Client().get("/").content.decode()
    assert "<h1>Find yourself in every event photo</h1>" in page
    assert '<a class="button" href="/accounts/login/">Log in</a>' in page
    assert "/accounts/signup/" not in page
    settings.THROWBACK_ALLOW_SIGNUP = True
    page = Client().get("/").content.decode()
    assert '<a class="button secondary" href="/accounts/signup/">Create an account</a>' in page


def test_a_logged_in_member_gets_their_photos_at_the_root(media_root: Path) -> None:
    response = client_for(MemberFactory(username="ada")).get("/")
    assert [t.name for t in response.templates][:1] == ["faces/photos.html"]


def test_the_consent_page_says_what_why_how_long_and_how_to_delete(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_RETENTION_DAYS = 90
    member = MemberFactory(username="ada", consent_given_at=None)
    page = client_for(member).get("/consent/").content.decode()
    for heading in (
        "What Throwback stores about you",
        "Why",
        "Who can see it",
        "For how long",
        "How to delete it",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "a <strong>face encoding</strong>: 128 numbers that describe your face" in page
    assert "<strong>Which event photos you were matched in</strong>" in page
    assert (
        "When you have not logged in for 90 days, your selfies, encodings, matches and this consent are deleted"
        in page
    )
    assert '<a href="/privacy/delete/">Delete all my data</a>' in page
    assert '<button type="submit">I agree</button>' in page


def test_the_privacy_page_after_consent_shows_when_and_how_to_withdraw() -> None:
    member = MemberFactory(username="ada", consent_given_at=dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.UTC))
    page = client_for(member).get("/consent/").content.decode()
    assert "<h1>Your privacy</h1>" in page
    assert "You agreed on 4 March 2026, 10:30." in page  # Europe/Amsterdam
    assert "I agree</button>" not in page


def test_consent_without_the_box_ticked_says_so() -> None:
    member = MemberFactory(username="ada", consent_given_at=None)
    response = client_for(member).post("/consent/", {})
    assert response.status_code == 200
    assert '<p class="error" role="alert">Please tick the box to agree, or leave this page.</p>' in (
        response.content.decode()
    )
    member.refresh_from_db()
    assert member.consent_given_at is None


# --- photos, empty states, years --------------------------------------------------------
def test_empty_states_say_what_to_do(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    client = client_for(ada)
    page = client.get("/").content.decode()
    assert "Upload a selfie and we will find you in every event photo." in page
    reference_with(ada, unit(0))
    page = client.get("/").content.decode()
    assert "No photos of you yet — we import new albums every night." in page
    assert '<dialog id="lightbox"' not in page
    years = client.get("/years/").content.decode()
    assert "No dated photos of you yet — we import new albums every night." in years
    assert "No selfies yet." in client_for(MemberFactory(username="bob")).get("/references/").content.decode()


def dated_library(member: Member) -> dict[str, Photo]:
    """Ada's photos: two in a 2024 album, one in 2019, one undated, one dismissed in 2019."""
    reference = reference_with(member, unit(0))
    gala = AlbumFactory(title="Gala", date=dt.date(2024, 5, 1))
    trip = AlbumFactory(title="Trip", date=dt.date(2019, 8, 20))
    folder = AlbumFactory(title="Folder", date=None)
    photos = {
        "gala1": matched_photo(member, reference, album=gala),
        "gala2": matched_photo(member, reference, album=gala),
        "trip": matched_photo(member, reference, album=trip),
        "folder": matched_photo(member, reference, album=folder),
        "dismissed": matched_photo(member, reference, album=trip),
    }
    Dismissal.objects.create(member=member, photo=photos["dismissed"])
    return photos


def tile_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a class="tile" href="/photos/(\d+)/"', page)]


def test_the_photos_grid_groups_by_album_with_dates_and_lightbox_data(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    photos = dated_library(ada)
    page = client_for(ada).get("/").content.decode()
    assert re.findall(r"<h2>([^<]+)", page) == ["Gala ", "Trip ", "Folder"]
    assert '<time datetime="2024-05-01">1 May 2024</time>' in page
    assert tile_ids(page) == [photos[k].pk for k in ("gala1", "gala2", "trip", "folder")]
    gala1 = photos["gala1"].pk
    assert (
        f'<a class="tile" href="/photos/{gala1}/" data-id="{gala1}" data-src="/photos/{gala1}/file/" '
        f'data-download="/photos/{gala1}/download/" data-not-me="/photos/{gala1}/not-me/" '
        f'data-caption="Gala, 1 May 2024"><img src="/photos/{gala1}/file/" alt="Photo 1 of you at Gala" '
        f'loading="lazy"></a>'
    ) in page
    album = photos["gala1"].album_id
    assert (
        f'<a class="button secondary small" href="/albums/{album}/download/" download>Download my 2 photos (zip)</a>'
        in page
    )
    assert '<script src="/static/js/lightbox.js" defer></script>' in page
    assert "<script>" not in page  # no inline scripts
    assert 'Throwback to: <a href="/years/2024/">2024</a> · <a href="/years/2019/">2019</a>' in page


def test_years_count_the_members_dated_photos(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    dated_library(ada)
    assert member_years(ada) == [(2024, 2), (2019, 1)]
    assert member_years(MemberFactory(username="bob")) == []
    page = client_for(ada).get("/years/").content.decode()
    assert re.findall(r'<span class="year">(\d+)</span> <span class="count">([^<]+)</span>', page) == [
        ("2024", "2 photos"),
        ("2019", "1 photo"),
    ]


def test_a_year_page_shows_exactly_that_years_photos(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    photos = dated_library(ada)
    client = client_for(ada)
    page = client.get("/years/2019/").content.decode()
    assert "<h1>Throwback to 2019</h1>" in page
    assert tile_ids(page) == [photos["trip"].pk]
    assert '<span aria-current="page">2019</span>' in page and '<a href="/years/2024/">2024</a>' in page
    assert tile_ids(client.get("/years/2024/").content.decode()) == [photos["gala1"].pk, photos["gala2"].pk]
    empty = client.get("/years/2001/").content.decode()
    assert "No photos of you from 2001." in empty and tile_ids(empty) == []
    # Another member sees nothing of Ada's year.
    assert tile_ids(client_for(MemberFactory(username="bob")).get("/years/2019/").content.decode()) == []


def test_one_photos_page_has_download_and_not_me(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    photos = dated_library(ada)
    pk = photos["trip"].pk
    page = client_for(ada).get(f"/photos/{pk}/").content.decode()
    assert f'<img src="/photos/{pk}/file/" alt="Photo of you at Trip">' in page
    assert f'<a class="button" href="/photos/{pk}/download/" download>Download</a>' in page
    assert f'<form method="post" action="/photos/{pk}/not-me/" class="inline">' in page
    assert client_for(ada).get(f"/photos/{photos['dismissed'].pk}/").status_code == 404
    assert client_for(MemberFactory(username="bob")).get(f"/photos/{pk}/").status_code == 404


# --- downloads -------------------------------------------------------------------------------
def test_downloading_a_photo_gives_its_file_as_an_attachment(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    data = jpeg((80, 60), "orange")
    photo = matched_photo(
        ada, reference_with(ada, unit(0)), source_id="Party/IMG 1.jpg", file=stored("photos/x.jpg", data)
    )
    response = client_for(ada).get(f"/photos/{photo.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == 'attachment; filename="IMG_1.jpg"'
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == data
    assert client_for(MemberFactory(username="bob")).get(f"/photos/{photo.pk}/download/").status_code == 404


def read_zip(response) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    return {name: archive.read(name) for name in archive.namelist()}


def test_the_album_zip_holds_exactly_the_members_photos_of_that_album(media_root: Path) -> None:
    ada, bob = MemberFactory(username="ada"), MemberFactory(username="bob")
    ada_ref, bob_ref = reference_with(ada, unit(0)), reference_with(bob, unit(1))
    party = AlbumFactory(title="Summer party!")
    files = {name: jpeg((40, 30), color) for name, color in [("a", "red"), ("b", "green"), ("c", "blue")]}
    matched_photo(ada, ada_ref, album=party, source_id="Party/a.jpg", file=stored("photos/a.jpg", files["a"]))
    # Another folder with the same file name: both are kept, under distinct names.
    matched_photo(
        ada, ada_ref, album=party, source_id="Party/sub/a.jpg", file=stored("photos/b.jpg", files["b"])
    )
    matched_photo(
        bob, bob_ref, album=party, source_id="Party/bob.jpg", file=stored("photos/c.jpg", files["c"])
    )
    dismissed = matched_photo(
        ada, ada_ref, album=party, source_id="Party/no.jpg", file=stored("photos/d.jpg", jpeg())
    )
    Dismissal.objects.create(member=ada, photo=dismissed)
    matched_photo(ada, ada_ref, source_id="Elsewhere/e.jpg", file=stored("photos/e.jpg", jpeg()))

    response = client_for(ada).get(f"/albums/{party.pk}/download/")
    assert response["Content-Disposition"] == 'attachment; filename="Summer_party.zip"'
    assert response["Cache-Control"] == "private, no-store"
    assert read_zip(response) == {"a.jpg": files["a"], "a-2.jpg": files["b"]}

    bobs = read_zip(client_for(bob).get(f"/albums/{party.pk}/download/"))
    assert bobs == {"bob.jpg": files["c"]}
    nobody = client_for(MemberFactory(username="carol"))
    assert nobody.get(f"/albums/{party.pk}/download/").status_code == 404


def test_a_folder_photo_missing_from_storage_is_named_in_the_zip(media_root: Path) -> None:
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    album = AlbumFactory(title="Gala")
    kept = jpeg((20, 20), "red")
    matched_photo(ada, reference, album=album, source_id="Gala/ok.jpg", file=stored("photos/ok.jpg", kept))
    lost = matched_photo(
        ada, reference, album=album, source_id="Gala/lost.jpg", file=stored("photos/lost.jpg", jpeg())
    )
    default_storage.delete(lost.file.name)
    entries = read_zip(client_for(ada).get(f"/albums/{album.pk}/download/"))
    assert entries == {
        "ok.jpg": kept,
        "NOT-INCLUDED.txt": b"These photos could not be fetched right now; try again later:\n"
        b"lost.jpg: file missing from storage\n",
    }


def website_photo(fake: FakeConcrexit, member: Member, album: Album, pk: int) -> Photo:
    url = fake.file_url(pk)
    return matched_photo(
        member,
        member.references.get(),
        album=album,
        source_id=str(pk),
        origin=urlsplit(url).path,
        remote_urls={"full": url, "large": fake.file_url(pk, "large")},
        urls_fetched_at=timezone.now(),
    )


def test_website_photos_are_fetched_on_the_server_for_downloads(
    fake_concrexit: FakeConcrexit, media_root: Path
) -> None:
    pks = fake_concrexit.add_album("borrel", "Borrel", [jpeg((50, 40), "red"), jpeg((50, 40), "blue")])
    ada = MemberFactory(username="ada")
    reference_with(ada, unit(0))
    album = AlbumFactory(source=Album.Source.CONCREXIT, source_id="borrel", title="Borrel")
    photos = [website_photo(fake_concrexit, ada, album, pk) for pk in pks]
    client = client_for(ada)

    single = client.get(f"/photos/{photos[0].pk}/download/")
    assert single.status_code == 200
    assert single["Content-Disposition"] == f'attachment; filename="borrel-{pks[0]}.jpg"'
    full = [_render(fake_concrexit.photo_bytes(pk), "full") for pk in pks]
    assert b"".join(single.streaming_content) == full[0]

    # The second file fails once: it is left out and named.
    fake_concrexit.fail(f"/media/private/photos/borrel/{pks[1]}_", 500)
    entries = read_zip(client.get(f"/albums/{album.pk}/download/"))
    assert entries == {
        f"borrel-{pks[0]}.jpg": full[0],
        "NOT-INCLUDED.txt": (
            "These photos could not be fetched right now; try again later:\n"
            f"borrel-{pks[1]}.jpg: download failed: HTTP 500\n"
        ).encode(),
    }
    assert read_zip(client.get(f"/albums/{album.pk}/download/")) == {
        f"borrel-{pks[0]}.jpg": full[0],
        f"borrel-{pks[1]}.jpg": full[1],
    }


def test_a_website_photo_that_cannot_be_fetched_gives_a_clear_page(
    fake_concrexit: FakeConcrexit, media_root: Path
) -> None:
    (pk,) = fake_concrexit.add_album("borrel", "Borrel", [jpeg()])
    ada = MemberFactory(username="ada")
    reference_with(ada, unit(0))
    album = AlbumFactory(source=Album.Source.CONCREXIT, source_id="borrel", title="Borrel")
    photo = website_photo(fake_concrexit, ada, album, pk)
    fake_concrexit.remove_photo(pk)
    response = client_for(ada).get(f"/photos/{photo.pk}/download/")
    assert response.status_code == 503
    assert "<h1>This photo cannot be downloaded right now</h1>" in response.content.decode()


def test_every_page_carries_a_content_security_policy(settings, admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    settings.THALIA_API_URL = "https://thalia.example"
    settings.THALIA_FILE_HOSTS = ["cdn.thalia.example"]
    expected = (
        "default-src 'self'; img-src 'self' https://thalia.example https://cdn.thalia.example; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    for url in ("/", "/accounts/login/", "/admin/"):
        response = Client().get(url) if url != "/admin/" else admin_client.get(url)
        assert response["Content-Security-Policy"] == expected, url


def test_favicon_ico_points_to_the_static_icon() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
