"""The member's pages in a real headless Chromium (see tests/test_browser.py):
every refused selfie with its message and the upload progress; the photos
grid, the lightbox, "not me" (kept after rematch), the album zip, the year
view, and "delete all my data". Screenshots go where test_browser.py's go.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from faces.models import Album, Dismissal, Match, Photo
from members.models import Member, ReferenceFace
from members.services import reference_add
from tests.conftest import make_album_folder
from tests.factories import MemberFactory
from tests.test_browser import PASSWORD, TIMEOUT_MS, chromium, screenshots, shoot  # noqa: F401 (fixtures)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Records every value the upload's <progress> takes, across the upload.
RECORD_PROGRESS = """() => {
  window.progressValues = [];
  const bar = document.getElementById('upload-progress');
  new MutationObserver(() => window.progressValues.push(bar.getAttribute('value')))
    .observe(bar, {attributes: true, attributeFilter: ['value']});
}"""
IMAGES_LOADED = """(selector) => [...document.querySelectorAll(selector)]
  .every(img => img.complete && img.naturalWidth > 0)"""


def open_page(browser, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # Encoding a selfie on a busy machine can take longer than expect()'s 5 s.
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors too (a missing file, a script error), except the API's
    # 400 answers to refused selfies, which Chromium logs as failed loads.
    refused = "Failed to load resource: the server responded with a status of 400"
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text) if msg.type == "error" and not msg.text.startswith(refused) else None
        ),
    )
    return context, page, errors


def log_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/")


def png(size: tuple[int, int], color: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.browser
def test_every_refused_selfie_gets_a_clear_message_and_good_ones_show_as_face_crops(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    examples: Path,
    tmp_path: Path,
    settings,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings.THROWBACK_MAX_REFERENCES = 2
    settings.THROWBACK_UPLOAD_MAX_MB = 1
    member = MemberFactory(username="bo")
    context, page, errors = open_page(chromium, PHONE)
    log_in(page, live_server.url, "bo")
    page.get_by_role("link", name="My selfies").click()
    expect(page).to_have_url(f"{live_server.url}/references/")
    page.evaluate(RECORD_PROGRESS)
    alert = page.get_by_role("alert")
    upload = page.get_by_label("Your selfie")
    button = page.get_by_role("button", name="Upload")

    def refused(name: str, data: bytes | None = None, path: Path | None = None) -> None:
        file = path or tmp_path / name
        if data is not None:
            file.write_bytes(data)
        upload.set_input_files(str(file))
        button.click()

    # not_image
    refused("notes.txt", b"these are not pixels\n")
    expect(alert).to_have_text("This file is not an image we can read. Please upload a JPEG or PNG photo.")
    # no_face
    refused("wall.png", png((400, 300)))
    expect(alert).to_have_text(
        "We could not find a face in this photo. Use a well-lit photo of your face, looking at the camera."
    )
    # many_faces, and the upload showed its progress up to 100 %
    page.evaluate("() => { window.progressValues = []; }")
    refused("two_people.jpg", path=examples / "two_people.jpg")
    expect(alert).to_have_text("This photo shows 2 faces. Use a photo with only you in it.")
    assert "100" in page.evaluate("() => window.progressValues")
    expect(page.locator("#upload-progress")).to_be_hidden()
    expect(button).to_be_enabled()
    # too_large, caught in the browser before sending (over THROWBACK_UPLOAD_MAX_MB)
    refused("big.jpg", b"\xff\xd8" + b"0" * (3 * 1024 * 1024 // 2))
    tip = "Tip: a selfie from your phone's front camera, or a screenshot of the photo, is small enough."
    expect(alert).to_have_text(f"This file is 1.5 MB; the limit is 1 MB. {tip}")
    shoot(page, screenshots / "upload-too-large.png")
    # too_large from the server: too many pixels for THROWBACK_MAX_IMAGE_PIXELS
    settings.THROWBACK_MAX_IMAGE_PIXELS = 1_000_000
    refused("huge.png", png((2000, 2000)))
    expect(alert).to_have_text(f"This image has too many pixels; please upload a smaller photo. {tip}")
    settings.THROWBACK_MAX_IMAGE_PIXELS = 50_000_000
    # consent, withdrawn in another tab since this page was loaded
    Member.objects.filter(pk=member.pk).update(consent_given_at=None)
    refused("obama.jpg", path=examples / "obama.jpg")
    expect(alert).to_have_text(
        "Please agree to face processing before uploading a selfie. Go to the privacy page."
    )
    expect(alert.get_by_role("link", name="Go to the privacy page.")).to_have_attribute("href", "/consent/")
    assert ReferenceFace.objects.count() == 0
    Member.objects.filter(pk=member.pk).update(consent_given_at="2026-01-01T00:00:00Z")

    # A good selfie: on to the photos page, which has nothing yet.
    refused("obama.jpg", path=examples / "obama.jpg")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("p.empty")).to_contain_text(
        "No photos of you yet — we import new albums every night."
    )
    shoot(page, screenshots / "photos-none-yet.png")

    # limit: a second selfie arrives from another tab while this page is open.
    page.get_by_role("link", name="My selfies").click()
    page.evaluate(RECORD_PROGRESS)
    member.refresh_from_db()
    reference_add(member=member, data=(examples / "obama2.jpg").read_bytes())
    refused("obama3.jpg", path=examples / "obama3.jpg")
    expect(alert).to_have_text("You already have the maximum number of selfies; delete one first.")
    shoot(page, screenshots / "upload-limit.png")
    assert ReferenceFace.objects.selfies().filter(member=member).count() == 2

    # Reloaded: both face crops, no upload form, a note about the limit.
    page.reload()
    crops = page.locator("ul.references img")
    expect(crops).to_have_count(2)
    page.wait_for_function(IMAGES_LOADED, arg="ul.references img", timeout=TIMEOUT_MS)
    sizes = crops.evaluate_all("imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])")
    assert all(width == height and width > 100 for width, height in sizes), sizes
    expect(page.get_by_label("Your selfie")).to_have_count(0)
    expect(page.get_by_text("You have 2 selfies, the most you can keep.")).to_be_visible()
    shoot(page, screenshots / "references.png")

    # Delete one (its button is labelled with the selfie's date).
    first = ReferenceFace.objects.selfies().filter(member=member).order_by("created").first()
    assert first is not None
    page.locator("ul.references li").first.get_by_role(
        "button", name=re.compile("^Delete the selfie of")
    ).click()
    expect(page.get_by_role("status")).to_have_text("Selfie deleted, with its matches.")
    expect(crops).to_have_count(1)
    assert not ReferenceFace.objects.filter(pk=first.pk).exists()
    assert not default_storage.exists(first.image.name)
    assert errors == []
    context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_photos_lightbox_not_me_zip_years_and_delete_all(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    examples: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # Obama is in obama2 and two_people (Gala, 2024) and obama3 (Trip, 2019).
    root = make_album_folder(
        tmp_path / "photos",
        {
            "Gala": [examples / "obama2.jpg", examples / "two_people.jpg", examples / "biden.jpg"],
            "Trip": [examples / "obama3.jpg", examples / "kit_with_rose.jpg"],
        },
    )
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=io.StringIO())
    Album.objects.filter(title="Gala").update(date="2024-05-01")
    Album.objects.filter(title="Trip").update(date="2019-08-20")
    ada = MemberFactory(username="ada")
    reference = reference_add(member=ada, data=(examples / "obama.jpg").read_bytes())
    ids = {p.source_id: p.pk for p in Photo.objects.all()}
    gala1, gala2, trip = ids["Gala/obama2.jpg"], ids["Gala/two_people.jpg"], ids["Trip/obama3.jpg"]

    context, page, errors = open_page(chromium, DESKTOP)
    log_in(page, live_server.url, "ada")
    expect(page.locator("section.album h2")).to_have_text(["Gala 1 May 2024", "Trip 20 August 2019"])
    tiles = page.locator("a.tile")
    expect(tiles).to_have_count(3)
    assert tiles.evaluate_all("a => a.map(t => t.getAttribute('href'))") == [
        f"/photos/{gala1}/",
        f"/photos/{gala2}/",
        f"/photos/{trip}/",
    ]
    for index in range(3):
        tiles.nth(index).scroll_into_view_if_needed()
    page.wait_for_function(IMAGES_LOADED, arg="ul.grid img", timeout=TIMEOUT_MS)
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, screenshots / "photos.png")

    # The lightbox: opens on a click, arrows move (and wrap), Escape closes
    # and gives focus back to the photo it was showing.
    dialog = page.locator("dialog#lightbox")
    caption = page.locator("#lightbox-caption")
    tiles.first.click()
    expect(dialog).to_be_visible()
    expect(caption).to_have_text("Gala, 1 May 2024 — photo 1 of 3")
    page.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth > 0")
    expect(page.locator("#lightbox-image")).to_have_attribute("alt", "Photo 1 of you at Gala")
    expect(page.locator("#lightbox-download")).to_have_attribute("href", f"/photos/{gala1}/download/")
    shoot(page, screenshots / "lightbox.png")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(caption).to_have_text("Trip, 20 August 2019 — photo 3 of 3")
    page.keyboard.press("ArrowRight")
    expect(caption).to_have_text("Gala, 1 May 2024 — photo 1 of 3")
    page.keyboard.press("ArrowLeft")
    expect(caption).to_have_text("Trip, 20 August 2019 — photo 3 of 3")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # (The dialog's close event, where focus moves, comes a task after it hides.)
    page.wait_for_function(f"() => document.activeElement.getAttribute('href') === '/photos/{trip}/'")

    # With the keyboard only: focus the second photo, Enter, then "Not me".
    tiles.nth(1).focus()
    page.keyboard.press("Enter")
    expect(caption).to_have_text("Gala, 1 May 2024 — photo 2 of 3")
    # "Not me" hides it at once and offers an Undo in place for a few seconds.
    status = page.locator("#lightbox-status")
    dialog.get_by_role("button", name="Not me").click()
    expect(status).to_be_visible()
    expect(status).to_contain_text("Hidden from your photos.")
    expect(page.locator("ul.grid li:visible")).to_have_count(2)
    assert list(Dismissal.objects.values_list("member__username", "photo_id")) == [("ada", gala2)]
    status.get_by_role("button", name="Undo").click()
    expect(status).to_be_hidden()
    expect(caption).to_have_text("Gala, 1 May 2024 — photo 2 of 3")
    expect(page.locator("ul.grid li:visible")).to_have_count(3)
    assert not Dismissal.objects.exists()
    # Hidden again, and no Undo: after a few seconds the next photo shows.
    dialog.get_by_role("button", name="Not me").click()
    expect(caption).to_have_text("Trip, 20 August 2019 — photo 2 of 2")
    expect(status).to_be_hidden()
    page.keyboard.press("Escape")
    assert list(Dismissal.objects.values_list("member__username", "photo_id")) == [("ada", gala2)]

    # Still hidden after the matches are recomputed.
    call_command("rematch", stdout=io.StringIO())
    # A dismissed photo is never assigned to its member again (its face stays free for others).
    assert not Match.objects.filter(member=ada, face__photo_id=gala2).exists()
    page.reload()
    expect(tiles).to_have_count(2)
    assert tiles.evaluate_all("a => a.map(t => t.getAttribute('href'))") == [
        f"/photos/{gala1}/",
        f"/photos/{trip}/",
    ]

    # The album zip: exactly the member's remaining photo of Gala.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download my 1 photo (zip)").first.click()
    download = info.value
    assert download.suggested_filename == "Gala.zip"
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.namelist() == ["obama2.jpg"]
        assert archive.read("obama2.jpg") == (examples / "obama2.jpg").read_bytes()

    # One photo's own page (where a photo links without JavaScript).
    page.goto(f"{live_server.url}/photos/{trip}/")
    expect(page.get_by_role("heading", name="Trip")).to_be_visible()
    page.wait_for_function(IMAGES_LOADED, arg="figure.single img", timeout=TIMEOUT_MS)
    shoot(page, screenshots / "photo.png")

    # Year by year.
    page.get_by_role("link", name="By year").click()
    expect(page.locator(".year-list a")).to_have_text(["2024 1 photo", "2019 1 photo"])
    shoot(page, screenshots / "years.png")
    page.get_by_role("link", name=re.compile("^2019")).click()
    expect(page.get_by_role("heading", name="Throwback to 2019")).to_be_visible()
    expect(tiles).to_have_count(1)
    page.wait_for_function(IMAGES_LOADED, arg="ul.grid img", timeout=TIMEOUT_MS)
    shoot(page, screenshots / "year.png")

    # On a phone.
    phone_context, phone, phone_errors = open_page(chromium, PHONE)
    log_in(phone, live_server.url, "ada")
    phone.wait_for_function(IMAGES_LOADED, arg="ul.grid img", timeout=TIMEOUT_MS)
    shoot(phone, screenshots / "phone-photos.png")
    phone.locator("a.tile").first.click()
    phone.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth > 0")
    shoot(phone, screenshots / "phone-lightbox.png")
    phone_context.close()

    # Delete all my data.
    selfie_file = reference.image.name
    assert default_storage.exists(selfie_file)
    page.get_by_role("link", name="Privacy").click()
    expect(page.get_by_role("heading", name="Your privacy")).to_be_visible()
    # The photo hidden with "Not me" is listed, as a thumbnail, with a way back.
    hidden = page.locator("#hidden li")
    expect(hidden).to_have_count(1)
    expect(hidden.get_by_role("button", name="Show again")).to_be_visible()
    page.wait_for_function(IMAGES_LOADED, arg="#hidden img", timeout=TIMEOUT_MS)
    thumbnail = hidden.locator("img").bounding_box()
    assert thumbnail is not None and thumbnail["width"] <= 200 and thumbnail["width"] == thumbnail["height"]
    shoot(page, screenshots / "privacy.png")
    page.get_by_role("link", name="Delete all my data").click()
    expect(page).to_have_url(f"{live_server.url}/privacy/delete/")
    expect(page.locator("main")).to_contain_text("your matches in 2 photos")  # those on My photos
    shoot(page, screenshots / "delete.png")
    page.get_by_label(re.compile("I understand that my selfies")).check()
    page.get_by_role("button", name="Delete my data").click()
    expect(page).to_have_url(f"{live_server.url}/privacy/deleted/")
    expect(page.get_by_role("heading", name="Your data is deleted")).to_be_visible()
    shoot(page, screenshots / "deleted.png")
    assert ReferenceFace.objects.filter(member=ada).count() == 0
    assert Match.objects.filter(member=ada).count() == 0
    assert Dismissal.objects.filter(member=ada).count() == 0
    assert Member.objects.get(pk=ada.pk).consent_given_at is None
    assert not default_storage.exists(selfie_file)
    page.get_by_role("link", name="My photos").click()
    expect(page.locator("p.empty")).to_contain_text("Upload a selfie and we will find you")
    expect(tiles).to_have_count(0)
    assert errors == [] and phone_errors == []
    # The grid's photo files were cached privately for an hour; the deletion's
    # Clear-Site-Data dropped them, so the browser asks the server, which refuses.
    photo_file = page.goto(f"{live_server.url}/photos/{gala1}/file/")
    assert photo_file is not None and photo_file.status == 404
    context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_the_admin_works_under_the_content_security_policy(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    from faces.services import import_run_finish, import_run_start
    from tests.factories import AlbumFactory, PhotoFactory, matched_photo, reference_with, unit

    gala = AlbumFactory(title="Gala", date="2024-05-01")
    PhotoFactory(album=gala, source_id="Gala/ok.jpg")
    PhotoFactory(album=gala, source_id="Gala/broken.jpg", status=Photo.Status.FAILED, error="not an image")
    PhotoFactory(album=gala, source_id="Gala/new.jpg", status=Photo.Status.PENDING)
    ada = MemberFactory(username="ada")
    reference = reference_with(ada, unit(0))
    for _ in range(3):
        matched_photo(ada, reference, album=gala)
    from faces.imports.summary import ImportSummary

    night = ImportSummary(albums=4, photos_new=30, photos_unchanged=12, photos_encoded=29, photos_failed=1)
    night.faces, night.matches, night.errors = 51, 7, ["photo Gala/broken.jpg: not an image"]
    import_run_finish(run=import_run_start(source="folder", location="/srv/photos"), summary=night)
    import_run_finish(
        run=import_run_start(source="concrexit", location="https://thalia.example"),
        summary=None,
        error="https://thalia.example/api/v2/photos/albums/?limit=50&offset=0: HTTP 503",
    )
    MemberFactory(username="boss", is_staff=True, is_superuser=True)

    context, page, errors = open_page(chromium, DESKTOP)
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    for url, name in (
        ("/admin/faces/album/", "admin-albums.png"),
        ("/admin/faces/photo/", "admin-photos.png"),
        ("/admin/members/referenceface/", "admin-references.png"),
        ("/admin/faces/importrun/", "admin-import-runs.png"),
    ):
        page.goto(f"{live_server.url}{url}")
        expect(page.locator("#result_list")).to_be_visible()
        shoot(page, screenshots / name)
    # The re-encode action, through the admin's own (static) scripts.
    page.goto(f"{live_server.url}/admin/faces/photo/?status__exact=failed")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("reencode")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("ul.messagelist")).to_have_text("1 photos will be encoded again by the next import.")
    assert Photo.objects.get(source_id="Gala/broken.jpg").status == Photo.Status.PENDING
    assert errors == []  # a Content-Security-Policy violation is reported as a console error
    context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_is_this_you_shows_the_face_and_yes_adds_the_photo(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    examples: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    from faces.models import Suggestion

    root = make_album_folder(tmp_path / "photos", {"Gala": [examples / "biden.jpg"]})
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=io.StringIO())
    ada = MemberFactory(username="ada")
    photo = Photo.objects.get()
    # An offer as matching makes it for a face just outside ada's limit.
    offer = Suggestion.objects.create(member=ada, face=photo.faces.get(), distance=0.52)

    context, page, errors = open_page(chromium, PHONE)
    log_in(page, live_server.url, "ada")
    with page.expect_response(lambda r: r.url.endswith(f"/photos/{photo.pk}/file/")) as loaded:
        page.reload()
    assert loaded.value.status == 200
    expect(page.get_by_role("heading", name="Is this you?")).to_be_visible()
    face = page.locator("svg.suggestion-face")
    expect(face).to_have_attribute("aria-label", "A face in a photo of Gala")
    assert face.bounding_box()["width"] == 128  # type: ignore[index]
    shoot(page, screenshots / "is-this-you.png")

    page.get_by_role("button", name="Yes, this face in Gala is me").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("a.tile")).to_have_count(1)
    expect(page.get_by_role("heading", name="Is this you?")).to_have_count(0)
    offer.refresh_from_db()
    assert offer.answer == Suggestion.Answer.YES
    assert errors == []
    context.close()
