# ruff: noqa: F811  (the chromium and screenshots fixtures come from test_browser)
"""Log in with Thalia in a real headless Chromium: Throwback's login page, the
provider's consent page (tests/fake_oidc.py), back to My photos, which shows
the matched website album the site lets the member open and not the one it
closes to them; and denying consent ends on a clear page.

Screenshots go where test_browser's do (THROWBACK_SCREENSHOTS, else a
temporary folder): login-thalia.png, photos-thalia.png, login-denied.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from faces.models import Photo
from members.models import Member
from members.services import reference_add
from tests.conftest import use_website
from tests.fake_oidc import FakeOIDC, MemberAwareConcrexit
from tests.test_browser import TIMEOUT_MS, chromium, screenshots, shoot  # noqa: F401  (fixtures)


@pytest.fixture
def website(settings) -> Iterator[MemberAwareConcrexit]:  # type: ignore[no-untyped-def]
    with MemberAwareConcrexit() as fake:
        use_website(settings, fake)
        yield fake


@pytest.mark.slow
@pytest.mark.browser
def test_member_logs_in_with_thalia_and_sees_only_albums_the_site_opens_to_them(
    transactional_db,
    live_server,
    chromium,
    screenshots: Path,
    media_root: Path,
    examples: Path,
    website: MemberAwareConcrexit,
    settings,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # Obama is in both website albums; member 7 may open only "Spring party".
    website.add_album("spring-party", "Spring party", [examples / "obama2.jpg"])
    website.add_album("board-drinks", "Board drinks", [examples / "obama3.jpg"])
    website.accessible_to["7"] = {"spring-party"}
    call_command("import_albums", workers=1, no_progress=True)
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 2
    member = Member.objects.create(username="thalia-7", thalia_id="7")
    member.set_unusable_password()
    member.consent_given_at = member.date_joined
    member.save()
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    assert Photo.objects.filter(faces__matches__member=member).count() == 2

    with FakeOIDC(resource=website) as provider:
        provider.add_client("throwback", {f"{live_server.url}/accounts/thalia/callback/"})
        provider.user = "7"
        provider.auto_approve = False  # show the consent page
        settings.THALIA_OIDC_URL = provider.base_url
        settings.THALIA_OIDC_CLIENT_ID = "throwback"

        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        browser_errors: list[str] = []
        page.on("pageerror", lambda exc: browser_errors.append(str(exc)))

        page.goto(f"{live_server.url}/accounts/login/")
        shoot(page, screenshots / "login-thalia.png")
        page.get_by_role("link", name="Log in with Thalia").click()

        # At the website: allow Throwback.
        expect(page.get_by_role("heading", name="Authorize throwback?")).to_be_visible()
        page.get_by_role("button", name="Allow").click()

        expect(page).to_have_url(f"{live_server.url}/")
        expect(page.get_by_role("heading", name="My photos")).to_be_visible()
        albums = page.locator("section.album")
        expect(albums).to_have_count(1)
        expect(albums.locator("h2")).to_contain_text(["Spring party"])
        expect(page.locator("ul.grid img")).to_have_count(1)
        page.wait_for_function(
            "() => [...document.querySelectorAll('ul.grid img')].every(img => img.complete && img.naturalWidth > 0)",
            timeout=TIMEOUT_MS,
        )
        shoot(page, screenshots / "photos-thalia.png")
        assert browser_errors == []
        context.close()

        # Another browser denies consent: a clear page, not logged in.
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_role("link", name="Log in with Thalia").click()
        page.get_by_role("button", name="Deny").click()
        expect(page.get_by_role("heading", name="You are not logged in")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_text(
            "You did not allow Throwback to use your Thalia account, so you are not logged in."
        )
        shoot(page, screenshots / "login-denied.png")
        page.goto(f"{live_server.url}/")  # still a visitor: the landing page, not My photos
        expect(page.get_by_role("heading", name="Find yourself in every event photo")).to_be_visible()
        expect(page.get_by_role("heading", name="My photos")).to_have_count(0)
        context.close()
