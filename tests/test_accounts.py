"""Local accounts: the sign-up page, the warning before the lock-out, the lock-out page, password reset by email."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from members.models import Member
from tests.conftest import SITE
from tests.factories import MemberFactory
from tests.smtp import SmtpServer

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def login(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR="10.0.0.1"
    )


def test_the_fourth_failure_warns_and_the_fifth_shows_the_lock_out_page(settings) -> None:  # type: ignore[no-untyped-def]
    MemberFactory(username="ada")
    client = Client()
    warning = "One more failed attempt locks this username on this device for 15 minutes."
    for attempt in range(1, 4):
        page = login(client, "ada", "wrong")
        assert page.status_code == 200 and warning not in page.content.decode(), attempt
    page = login(client, "ada", "wrong")
    assert page.status_code == 200
    assert warning in page.content.decode()

    locked = login(client, "ada", "wrong")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "<title>Too many attempts · Throwback</title>" in html
    assert '<header class="bar">' in html  # the site's page, with its header
    assert "too many login attempts with a wrong password for <strong>ada</strong>" in html
    assert "paused for <strong>15 minutes</strong>" in html
    assert 'href="/accounts/password/reset/"' in html and 'href="/"' in html
    settings.AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=1)
    assert "paused for <strong>1 minute</strong>" in login(client, "ada", PASSWORD).content.decode()


def test_sign_up_page_labels_rules_errors_and_the_way_to_log_in(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_ALLOW_SIGNUP = True
    client = Client()
    html = client.get("/accounts/signup/").content.decode()
    assert '<label for="id_username">Username</label>' in html  # no colon
    assert '<label for="id_email">Email address (optional)</label>' in html
    assert '<ul class="hint rules" id="id_password1_helptext">' in html
    assert "<li>at least 8 characters</li>" in html
    assert 'Already have an account? <a href="/accounts/login/">Log in</a>' in html

    refused = client.post(
        "/accounts/signup/", {"username": "ada", "password1": "12345678", "password2": "12345678"}
    ).content.decode()
    assert '<p class="error" role="alert">This password is entirely numeric.</p>' in refused
    made = client.post(
        "/accounts/signup/",
        {"username": "ada", "email": "ada@example.org", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert made.status_code == 302 and made["Location"] == "/consent/"
    assert Member.objects.get(username="ada").email == "ada@example.org"


def test_a_local_account_resets_its_password_by_email_and_a_thalia_account_gets_nothing(
    smtp: SmtpServer,
) -> None:
    MemberFactory(username="ada", email="ada@example.org")
    thalia = MemberFactory(username="thalia-7", email="seven@example.org", thalia_id="7")
    thalia.set_unusable_password()
    thalia.save()
    client = Client()
    assert 'href="/accounts/password/reset/"' in client.get("/accounts/login/").content.decode()

    for address in ("ada@example.org", "seven@example.org", "nobody@example.org"):
        sent = client.post("/accounts/password/reset/", {"email": address})
        assert sent.status_code == 302 and sent["Location"] == "/accounts/password/reset/sent/"
    [mail] = smtp.received
    assert mail.recipients == ["ada@example.org"]
    assert mail.message["Subject"] == "Reset your Throwback password"
    [link] = re.findall(re.escape(SITE) + r"/accounts/password/reset/\S+/", mail.part("text/plain"))

    path = link.removeprefix(SITE)
    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a new long secret", "new_password2": "a new long secret"},
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/password/reset/done/"
    assert login(Client(), "ada", "a new long secret").status_code == 302
    assert b"This link has been used already" in client.get(path, follow=True).content
