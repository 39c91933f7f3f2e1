"""End to end in a real headless Chromium: a member logs in, consents, uploads
a selfie and sees exactly the event photos they appear in.

Driven by Playwright's sync API against pytest-django's live server, with
Debian's Chromium (/usr/bin/chromium); Playwright's own browser download is
never used. Screenshots of every page visited go to a temporary folder, or
to THROWBACK_SCREENSHOTS: `THROWBACK_SCREENSHOTS=docs/screenshots make test`
regenerates the committed ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from faces.models import Photo
from tests.conftest import REPO, make_album_folder
from tests.factories import MemberFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
TIMEOUT_MS = 20_000


def screenshot_folder(default: Path) -> Path:
    """THROWBACK_SCREENSHOTS (relative to the checkout) when set, else default.

    So a plain test run never rewrites the committed docs/screenshots/.
    """
    configured = os.environ.get("THROWBACK_SCREENSHOTS", "")
    return REPO / configured if configured else default


def test_screenshots_go_to_the_configured_folder_or_a_temporary_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("THROWBACK_SCREENSHOTS", raising=False)
    assert screenshot_folder(tmp_path) == tmp_path
    monkeypatch.setenv("THROWBACK_SCREENSHOTS", "docs/screenshots")
    assert screenshot_folder(tmp_path) == REPO / "docs" / "screenshots"
    monkeypatch.setenv("THROWBACK_SCREENSHOTS", "/srv/shots")
    assert screenshot_folder(tmp_path) == Path("/srv/shots")


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Debian's headless Chromium; fails (never skips) when it is missing."""
    if not (CHROMIUM.is_file() and CHROMIUM.stat().st_mode & 0o111):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium "
            "(`make browser`, or `apt-get install chromium`); Playwright's download is not used"
        )
    # Playwright's sync API keeps an event loop running in this thread, which
    # makes Django refuse ORM calls from the test without this.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # Inside sync_playwright() the test runs in another contextvars
            # context, so Django's ORM opened a second connection there; close
            # it, or dropping the test database fails ("accessed by other users").
            connections.close_all()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The folder the browser test photographs pages into (see screenshot_folder)."""
    folder = screenshot_folder(tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(path), full_page=True)


# transactional_db is named before live_server so the session-scoped test
# database is created before the server starts and dropped after it stops.
@pytest.mark.slow
@pytest.mark.browser
def test_member_logs_in_consents_uploads_a_selfie_and_sees_exactly_their_photos(
    transactional_db,
    live_server,
    chromium,
    screenshots: Path,
    media_root: Path,
    examples: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # Two albums imported through the product's own command: Obama is in
    # obama2, two_people (with Biden) and obama3; not in biden or kit_with_rose.
    root = make_album_folder(
        tmp_path / "photos",
        {
            "Party": [examples / "obama2.jpg", examples / "biden.jpg", examples / "two_people.jpg"],
            "Gala": [examples / "obama3.jpg", examples / "kit_with_rose.jpg"],
        },
    )
    call_command("import_albums", folder=str(root), workers=1, no_progress=True)
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 5
    MemberFactory(username="ada", consent_given_at=None)

    # Finding the faces of a selfie on a busy machine can take longer than expect()'s 5 s.
    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    browser_errors: list[str] = []
    page.on("pageerror", lambda exc: browser_errors.append(str(exc)))
    # Console errors too: a missing file, a Content-Security-Policy violation.
    # Not the API's 400 answers to the refused selfies below.
    page.on(
        "console",
        lambda msg: (
            browser_errors.append(msg.text)
            if msg.type == "error" and "status of 400" not in msg.text
            else None
        ),
    )

    # The landing page, then log in.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Find yourself in every event photo")).to_be_visible()
    shoot(page, screenshots / "landing.png")
    page.get_by_role("main").get_by_role("link", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("heading", name="Find yourself in every event photo")).to_be_visible()
    shoot(page, screenshots / "login.png")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # The photos page, empty: no selfie yet.
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="My photos")).to_be_visible()
    expect(page.locator("p.empty")).to_contain_text("Upload a selfie and we will find you")
    expect(page.locator("ul.grid img")).to_have_count(0)
    shoot(page, screenshots / "photos-empty.png")

    # "My selfies" asks for consent first.
    page.get_by_role("link", name="My selfies").click()
    expect(page).to_have_url(f"{live_server.url}/consent/")
    expect(page.get_by_role("heading", name="Before you upload a selfie")).to_be_visible()
    shoot(page, screenshots / "consent.png")
    page.get_by_label(re.compile("I agree that Throwback stores")).check()
    page.get_by_role("button", name="I agree").click()

    # The selfie page.
    expect(page).to_have_url(f"{live_server.url}/references/")
    expect(page.get_by_role("heading", name="My selfies")).to_be_visible()
    expect(page.locator("ul.references")).to_contain_text("No selfies yet.")
    shoot(page, screenshots / "references-empty.png")

    # A text file is refused, with the reason shown (uploads go through the
    # JSON API from static/js/upload.js: the page stays, the message appears).
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("these are not pixels\n")
    page.get_by_label("Your selfie").set_input_files(str(not_an_image))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(f"{live_server.url}/references/")
    expect(page.get_by_role("alert")).to_have_text(
        "This file is not an image we can read. Please upload a JPEG or PNG photo."
    )

    # So is a photo with two faces.
    page.get_by_label("Your selfie").set_input_files(str(examples / "two_people.jpg"))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(f"{live_server.url}/references/")
    expect(page.get_by_role("alert")).to_have_text(
        "This photo shows 2 faces. Use a photo with only you in it."
    )
    expect(page.locator("ul.references")).to_contain_text("No selfies yet.")
    shoot(page, screenshots / "upload-error.png")

    # A good selfie: on to the photos page with the matches.
    page.get_by_label("Your selfie").set_input_files(str(examples / "obama.jpg"))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_have_text("Selfie added. Your photos are below.")
    expect(page.locator("p.empty")).to_have_count(0)

    albums = page.locator("section.album")
    expect(albums).to_have_count(2)
    # Dated by their photos' EXIF days (obama3.jpg's, obama2.jpg's), newest first.
    expect(albums.locator("h2")).to_have_text(["Gala 10 May 2010", "Party 9 September 2009"])
    images = page.locator("ul.grid img")
    expect(images).to_have_count(3)
    expect(albums.filter(has_text="Party").locator("img")).to_have_count(2)
    expect(albums.filter(has_text="Gala").locator("img")).to_have_count(1)

    # Exactly obama2, two_people and obama3: map each image URL back to its photo.
    sources = images.evaluate_all("imgs => imgs.map(img => img.getAttribute('src'))")
    ids = []
    for src in sources:
        match = re.fullmatch(r"/photos/(\d+)/file/", src)
        assert match, f"unexpected image URL {src!r}"
        ids.append(int(match.group(1)))
    shown = sorted(Photo.objects.filter(pk__in=ids).values_list("source_id", flat=True))
    assert len(ids) == 3
    assert shown == ["Gala/obama3.jpg", "Party/obama2.jpg", "Party/two_people.jpg"]

    # The images really load (they are loading="lazy": bring each into view).
    for index in range(3):
        images.nth(index).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('ul.grid img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=TIMEOUT_MS,
    )
    sizes = images.evaluate_all("imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])")
    assert all(width > 0 and height > 0 for width, height in sizes), sizes
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, screenshots / "photos-first-selfie.png")

    # The selfie is listed on its page.
    page.get_by_role("link", name="My selfies").click()
    expect(page.locator("ul.references li")).to_have_count(1)
    expect(page.locator("ul.references")).to_contain_text("Selfie added")

    # The photo files are not public: a fresh browser without the session
    # is sent to the login page instead of getting the picture.
    stranger = chromium.new_context()
    try:
        anonymous = stranger.new_page()
        response = anonymous.goto(f"{live_server.url}{sources[0]}")
        assert response is not None and response.ok
        expect(anonymous).to_have_url(re.compile(r"/accounts/login/\?next="))
        assert "image" not in (response.headers.get("content-type") or "")
    finally:
        stranger.close()

    assert browser_errors == []
    context.close()
