"""Issue 16's pages in a real headless Chromium (see tests/test_browser.py): the lightbox's
fixed controls and swipe, the digest opt-in and the digest itself, "On this day", the
look-alike warning, sign-up, the warning before the lock-out and the lock-out page, the
phone header. Screenshots go where test_browser.py's go (docs/screenshots/ when asked).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from faces.models import Photo
from members.models import Member
from members.notifications import digest_message
from members.services import reference_add
from tests.factories import AlbumFactory, MemberFactory, matched_photo, reference_with, unit
from tests.test_browser import PASSWORD, TIMEOUT_MS, chromium, screenshots, shoot  # noqa: F401 (fixtures)
from tests.test_browser_member import DESKTOP, IMAGES_LOADED, PHONE, log_in, open_page
from tests.test_on_this_day import years_back


def photo_file(size: tuple[int, int], color: str) -> str:
    """A JPEG of this size in media storage, with a frame so its edges show in a screenshot."""
    image = Image.new("RGB", size, color)
    image.paste("white", (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return default_storage.save(f"photos/{color}-{size[0]}x{size[1]}.jpg", ContentFile(buffer.getvalue()))


BOXES = """() => ['previous', 'next', 'close'].map(action => {
  const box = document.querySelector(`#lightbox [data-action=${action}]`).getBoundingClientRect();
  return [action, Math.round(box.x), Math.round(box.y), Math.round(box.width), Math.round(box.height)];
})"""
# How much the shown photo is scaled (object-fit: contain) and the stage's size.
SCALE = """() => {
  const img = document.getElementById('lightbox-image');
  return Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
}"""
SWIPE = """([dx]) => {
  const stage = document.querySelector('.lightbox-stage');
  const box = stage.getBoundingClientRect();
  const y = box.y + box.height / 2, x = box.x + box.width / 2;
  const event = (type, clientX) => new PointerEvent(type, {bubbles: true, pointerType: 'touch', clientX, clientY: y});
  stage.dispatchEvent(event('pointerdown', x));
  stage.dispatchEvent(event('pointerup', x + dx));
}"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_lightbox_controls_stay_put_through_photos_of_every_size_and_a_swipe_moves(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    viewport: dict[str, int],
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    ada = MemberFactory(username="ada")
    selfie = reference_with(ada, unit(1))
    album = AlbumFactory(title="Sizes", date="2024-05-01")
    # Wide, tall, tiny (scaled up) and huge.
    sizes = [((1600, 900), "teal"), ((300, 600), "navy"), ((120, 80), "olive"), ((3000, 2000), "maroon")]
    for size, color in sizes:
        matched_photo(ada, selfie, album=album, file=photo_file(size, color))
    context, page, errors = open_page(chromium, viewport)
    log_in(page, live_server.url, "ada")
    page.locator("a.tile").first.click()
    caption = page.locator("#lightbox-caption")
    expect(caption).to_have_text("Sizes, 1 May 2024 — photo 1 of 4")
    boxes = []
    for number, (size, _) in enumerate(sizes, start=1):
        expect(caption).to_have_text(f"Sizes, 1 May 2024 — photo {number} of 4")
        page.wait_for_function(f"() => document.getElementById('lightbox-image').naturalWidth === {size[0]}")
        boxes.append(page.evaluate(BOXES))
        if size == (120, 80):
            assert page.evaluate(SCALE) > 2, "a small photo is scaled up to the space"
            shoot(
                page, screenshots / f"lightbox-small-photo-{'phone' if viewport == PHONE else 'desktop'}.png"
            )
        page.locator("#lightbox [data-action=next]").click()
    assert all(box == boxes[0] for box in boxes), boxes
    expect(caption).to_have_text("Sizes, 1 May 2024 — photo 1 of 4")  # round again
    dialog = page.locator("dialog#lightbox").bounding_box()
    assert dialog is not None
    if viewport == PHONE:  # the phone's whole height, controls at the bottom
        assert (round(dialog["y"]), round(dialog["height"])) == (0, PHONE["height"])
        close = page.locator("#lightbox [data-action=close]").bounding_box()
        assert close is not None and close["y"] + close["height"] > PHONE["height"] - 80
    # A swipe to the left shows the next photo, to the right the previous one.
    page.evaluate(SWIPE, [-120])
    expect(caption).to_have_text("Sizes, 1 May 2024 — photo 2 of 4")
    page.evaluate(SWIPE, [150])
    page.evaluate(SWIPE, [150])
    expect(caption).to_have_text("Sizes, 1 May 2024 — photo 4 of 4")
    page.evaluate(SWIPE, [30])  # too short: stays
    expect(caption).to_have_text("Sizes, 1 May 2024 — photo 4 of 4")
    assert errors == []
    context.close()


def digest_html(member: Member) -> str:
    photos = list(Photo.objects.matched_to(member))
    message = digest_message(member, photos)
    [(html, _)] = message.alternatives
    return str(html)


@pytest.mark.slow
@pytest.mark.browser
def test_opt_in_digest_on_this_day_and_the_look_alike_warning(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    examples: Path,
    settings,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings.THROWBACK_SITE_URL = live_server.url
    ada = MemberFactory(username="ada", first_name="Ada", email="")
    selfie = reference_add(member=ada, data=(examples / "obama.jpg").read_bytes())
    today = timezone.localdate()
    colours = iter(["teal", "navy", "olive", "maroon", "purple", "gray"])
    for title, date, count in (
        ("Sinterklaas", years_back(today, 3), 3),
        ("Drinks", years_back(today, 1), 1),
        ("Gala", today - dt.timedelta(days=40), 2),
    ):
        album = AlbumFactory(title=title, date=date)
        for _ in range(count):
            matched_photo(ada, selfie, album=album, file=photo_file((800, 600), next(colours, "black")))

    # The opt-in on the privacy page: off, then on with an address.
    context, page, errors = open_page(chromium, DESKTOP)
    log_in(page, live_server.url, "ada")
    on_this_day = page.locator("section.on-this-day")

    def ago(years: int) -> str:
        back = today.year - years_back(today, years).year
        return "1 year" if back == 1 else f"{back} years"

    expect(on_this_day.locator("p")).to_have_text(
        [f"{ago(1)} ago today: Drinks · 1 photo", f"{ago(3)} ago today: Sinterklaas · 3 photos"]
    )
    page.wait_for_function(IMAGES_LOADED, arg="section.on-this-day img", timeout=TIMEOUT_MS)
    shoot(page, screenshots / "on-this-day.png")
    page.get_by_role("link", name="Privacy").click()
    box = page.get_by_label("Email me when an import finds new photos of me")
    expect(box).not_to_be_checked()
    box.check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_have_text("Enter the address the mails should go to.")
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_label("Email me when an import finds new photos of me").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text(
        "We will email ada@example.org when an import finds new photos of you."
    )
    expect(page.get_by_label("Email me when an import finds new photos of me")).to_be_checked()
    page.locator("#notifications").scroll_into_view_if_needed()
    shoot(page, screenshots / "privacy-notifications.png")
    ada.refresh_from_db()
    assert ada.notify_new_photos and ada.email == "ada@example.org"

    # The digest as a mail program shows its HTML part.
    mail = context.new_page()
    mail.set_content(digest_html(ada))
    expect(mail.get_by_role("heading", name="6 new photos of you")).to_be_visible()
    shoot(mail, screenshots / "digest.png")

    # A look-alike: bo's selfie shows the same face as ada's.
    bo = MemberFactory(username="bo_brother")
    reference_add(member=bo, data=(examples / "obama2.jpg").read_bytes())
    page.get_by_role("navigation").get_by_role("link", name="My selfies").click()
    warning = page.locator("#lookalike")
    expect(warning.get_by_role("heading", name="Someone looks a lot like you")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("bo_brother")
    page.wait_for_function(IMAGES_LOADED, arg="ul.references img", timeout=TIMEOUT_MS)
    shoot(page, screenshots / "lookalike.png")
    assert errors == []

    # On a phone: On this day, the digest and the warning.
    phone_context, phone, phone_errors = open_page(chromium, PHONE)
    log_in(phone, live_server.url, "ada")
    phone.wait_for_function(IMAGES_LOADED, arg="section.on-this-day img", timeout=TIMEOUT_MS)
    shoot(phone, screenshots / "phone-on-this-day.png")
    phone_mail = phone_context.new_page()
    phone_mail.set_content(digest_html(ada))
    shoot(phone_mail, screenshots / "phone-digest.png")
    assert phone_errors == []
    phone_context.close()
    context.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_sign_up_the_warning_before_the_lock_out_the_lock_out_page_and_the_phone_header(
    transactional_db,
    live_server,
    chromium,  # noqa: F811
    screenshots: Path,  # noqa: F811
    media_root: Path,
    settings,
    viewport: dict[str, int],
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings.THROWBACK_ALLOW_SIGNUP = True
    prefix = "phone-" if viewport == PHONE else ""
    MemberFactory(username="ada")
    context, page, errors = open_page(chromium, viewport)

    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Username").fill("bo")
    page.get_by_label("Password", exact=True).fill("12345678")
    page.get_by_label("Password confirmation").fill("12345678")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text(
        ["This password is too common.", "This password is entirely numeric."]
    )
    expect(page.get_by_text("Already have an account?")).to_be_visible()
    shoot(page, screenshots / f"{prefix}signup.png")

    page.goto(f"{live_server.url}/accounts/login/")
    for _ in range(4):
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
    expect(page.locator("p.warning")).to_have_text(
        "One more failed attempt locks this username on this device for 15 minutes. "
        "Reset your password instead?"
    )
    shoot(page, screenshots / f"{prefix}login-warning.png")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Logging in is paused")).to_be_visible()
    expect(page.locator("main")).to_contain_text("paused for 15 minutes after the last attempt")
    expect(page.locator("header.bar")).to_be_visible()
    shoot(page, screenshots / f"{prefix}locked-out.png")
    page.get_by_role("link", name="Reset it by email").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()

    # A member's header is one line, and a photo with a long album title scrolls only down.
    bo = Member.objects.create_user(username="bo", password=PASSWORD)
    selfie = reference_with(bo, unit(2))
    album = AlbumFactory(
        title="Eerstejaarsweekend_Landgoed_Zonnewende_Weekendkamp_2024_met_alle_commissies", date="2024-09-01"
    )
    photo = matched_photo(bo, selfie, album=album, file=photo_file((1200, 800), "teal"))
    log_in(page, live_server.url, "bo")
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.wait_for_function(IMAGES_LOADED, arg="figure.single img", timeout=TIMEOUT_MS)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    tops = page.evaluate(
        "() => [...document.querySelectorAll('header.bar .brand, header.bar nav a, header.bar nav button')]"
        ".map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))"
    )
    assert len(tops) == 6 and max(tops) - min(tops) <= 2, tops  # one line
    styles = page.evaluate(
        "() => [document.querySelector('header.bar nav a'), document.querySelector('header.bar nav button')]"
        ".map(e => { const s = getComputedStyle(e); return [s.fontSize, s.textDecorationLine, s.color]; })"
    )
    assert styles[0] == styles[1], styles  # "Log out" looks like the links
    shoot(page, screenshots / f"{prefix}photo-long-title.png")
    assert [e for e in errors if "status of 429 (Too Many Requests)" not in e] == []  # the lock-out's own
    context.close()
