"""The selfie page while the encoder works, in a real headless Chromium (see tests/test_browser.py).

The web side queues uploads (THROWBACK_ENCODE_SELFIES_IN=encoder, the
production default) and a real `manage.py run_encoder` process analyses them,
started only once the page shows "Analysing your selfie…", so that state is
seen for certain. With JavaScript the page polls the status URL; without it
the form leads to a page that refreshes itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from members import services
from members.models import SelfieUpload
from tests.factories import MemberFactory
from tests.test_browser import TIMEOUT_MS, chromium, screenshots, shoot  # noqa: F401 (fixtures)
from tests.test_browser_member import log_in, open_page
from tests.test_selfie_encoder import (  # noqa: F401 (fixtures)
    encoders,
    imported,
    kill_encoders_mid_analysis,
    queued,
    until,
    white_jpeg,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ANALYSIS_MS = 240_000  # generous: the encoder's model load and analysis on a busy machine


def test_the_page_shows_analysing_then_the_photos_once_the_encoder_is_done(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    queued,  # noqa: F811
    imported,  # noqa: F811
    encoders,  # noqa: F811
    examples: Path,
    screenshots: Path,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    MemberFactory(username="barack")
    context, page, errors = open_page(chromium, {"width": 1280, "height": 900})
    log_in(page, live_server.url, "barack")
    page.goto(f"{live_server.url}/references/")
    page.get_by_label("Your selfie").set_input_files(str(examples / "obama.jpg"))
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-message")).to_have_text("Analysing your selfie…")
    expect(page.get_by_role("button", name="Upload")).to_be_disabled()
    shoot(page, screenshots / "upload-analysing.png")
    encoders()
    expect(page).to_have_url(f"{live_server.url}/", timeout=ANALYSIS_MS)
    expect(page.get_by_role("status")).to_have_text(services.SELFIE_ADDED)
    expect(page.locator("ul.grid img")).to_have_count(3)
    assert errors == []
    context.close()


def test_a_refusal_found_after_the_upload_is_shown_on_the_page(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    queued,  # noqa: F811
    encoders,  # noqa: F811
    media_root: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    MemberFactory(username="someone")
    blank = tmp_path / "wall.jpg"
    blank.write_bytes(white_jpeg())
    context, page, errors = open_page(chromium, {"width": 1280, "height": 900})
    log_in(page, live_server.url, "someone")
    page.goto(f"{live_server.url}/references/")
    page.get_by_label("Your selfie").set_input_files(str(blank))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-message")).to_have_text("Analysing your selfie…")

    encoders()
    expect(page.get_by_role("alert")).to_have_text(services.NoFaceFound.message, timeout=ANALYSIS_MS)
    expect(page).to_have_url(f"{live_server.url}/references/")
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    assert errors == []
    context.close()


def test_an_encoder_that_died_twice_ends_in_a_clear_refusal_on_the_page(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    queued,  # noqa: F811
    encoders,  # noqa: F811
    examples: Path,
    media_root: Path,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    member = MemberFactory(username="barack")
    context, page, errors = open_page(chromium, {"width": 1280, "height": 900})
    log_in(page, live_server.url, "barack")
    page.goto(f"{live_server.url}/references/")
    page.get_by_label("Your selfie").set_input_files(str(examples / "obama-1080p.jpg"))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-message")).to_have_text("Analysing your selfie…")

    kill_encoders_mid_analysis(encoders, SelfieUpload.objects.filter(member=member))
    expect(page.locator("#upload-message")).to_have_text("Analysing your selfie…")  # still waiting, honestly
    encoders()
    expect(page.get_by_role("alert")).to_have_text(services.EncoderStopped.message, timeout=ANALYSIS_MS)
    assert errors == []
    context.close()


def test_without_javascript_the_status_page_refreshes_until_the_photos(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    queued,  # noqa: F811
    imported,  # noqa: F811
    encoders,  # noqa: F811
    examples: Path,
    screenshots: Path,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    MemberFactory(username="barack")
    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page, live_server.url, "barack")
    page.goto(f"{live_server.url}/references/")
    page.get_by_label("Your selfie").set_input_files(str(examples / "obama.jpg"))
    page.get_by_role("button", name="Upload").click()

    upload = SelfieUpload.objects.get(member__username="barack")
    expect(page).to_have_url(f"{live_server.url}/references/uploads/{upload.pk}/")
    expect(page.locator("#upload-status")).to_contain_text("Analysing your selfie…")
    shoot(page, screenshots / "upload-analysing-no-js.png")
    encoders()
    expect(page).to_have_url(f"{live_server.url}/", timeout=ANALYSIS_MS)  # the page refreshed itself
    expect(page.get_by_role("status")).to_have_text(services.SELFIE_ADDED)
    context.close()
