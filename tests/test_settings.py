"""Settings from the environment, and the system checks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import REPO, settings_error
from throwback.env import env_bool, env_float, env_int, env_list
from throwback.settings import secret_key_from_file


def test_env_helpers_parse_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_BOOL", "yes")
    monkeypatch.setenv("T_INT", "12")
    monkeypatch.setenv("T_FLOAT", "0.55")
    monkeypatch.setenv("T_LIST", "a.example, b.example,")
    assert env_bool("T_BOOL", False) is True
    assert env_bool("T_UNSET", True) is True
    assert env_int("T_INT", 1) == 12
    assert env_float("T_FLOAT", 0.49) == 0.55
    assert env_list("T_LIST", []) == ["a.example", "b.example"]


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "", " Off ", "FALSE"])
def test_env_bool_reads_false_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("T_BOOL", value)
    assert env_bool("T_BOOL", True) is False


@pytest.mark.parametrize("value", ["1", "true", "on", "yes", " TRUE ", "On"])
def test_env_bool_reads_true_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("T_BOOL", value)
    assert env_bool("T_BOOL", False) is True


@pytest.mark.parametrize(
    ("helper", "value", "message"),
    [
        (lambda: env_bool("T_BAD", False), "maybe", "T_BAD must be true or false"),
        (lambda: env_int("T_BAD", 1), "ten", "T_BAD must be an integer"),
        (lambda: env_int("T_BAD", 1, minimum=1), "0", "T_BAD must be at least 1"),
        (lambda: env_float("T_BAD", 1.0), "0,5", "T_BAD must be a number"),
        (lambda: env_float("T_BAD", 1.0), "nan", "T_BAD must be a number, not 'nan'"),
        (lambda: env_float("T_BAD", 1.0, minimum=1.0), "0.9", "T_BAD must be at least 1, not '0.9'"),
        (lambda: env_float("T_BAD", 1.0, maximum=2.0), "2.5", "T_BAD must be at most 2, not '2.5'"),
    ],
)
def test_bad_values_stop_start_up(monkeypatch: pytest.MonkeyPatch, helper, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_BAD", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_checks_pass_with_the_defaults() -> None:
    assert [m.id for m in run_checks() if m.level >= 40] == []


def test_checks_flag_an_impossible_threshold_and_an_unwritable_media_root(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_MATCH_THRESHOLD = 3.0
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings.MEDIA_ROOT = str(blocker / "media")
    ids = {m.id for m in run_checks()}
    assert {"faces.E001", "faces.E004"} <= ids


def test_a_secret_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"
    key = secret_key_from_file(path)
    assert len(key) == 67  # secrets.token_urlsafe(50)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key_from_file(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left


def test_an_empty_secret_key_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("\n")
    with pytest.raises(
        ImproperlyConfigured, match=f"^{path} is empty: delete it to make a new key, or set SECRET_KEY$"
    ):
        secret_key_from_file(path)


def test_without_secret_key_the_settings_use_the_data_folder_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="throwback.settings", THROWBACK_DATA_DIR=str(tmp_path))
    command = [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    first = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    key = (tmp_path / "secret_key").read_text()
    assert first.stdout == second.stdout == f"{key}\n"


def test_email_url_gives_djangos_mail_settings() -> None:
    from throwback.env import email_url

    assert email_url("EMAIL_URL", "smtp+tls://throwback%40example.org:p%2Fss@mail.example.org") == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.org",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "throwback@example.org",
        "EMAIL_HOST_PASSWORD": "p/ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }
    assert email_url("EMAIL_URL", "smtps://mail.example.org")["EMAIL_PORT"] == 465
    assert email_url("EMAIL_URL", "smtp://127.0.0.1:2525")["EMAIL_PORT"] == 2525
    assert email_url("EMAIL_URL", "console://") == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mail.example.org", "EMAIL_URL must start with one of smtp://"),
        ("imap://mail.example.org", "EMAIL_URL must start with one of"),
        ("smtp://mail.example.org:port", "EMAIL_URL has a port that is not a number"),
        ("smtp://:25", "EMAIL_URL names no mail server host"),
    ],
)
def test_a_bad_email_url_stops_start_up(value: str, message: str) -> None:
    from throwback.env import email_url

    with pytest.raises(ImproperlyConfigured, match=message):
        email_url("EMAIL_URL", value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"THROWBACK_SITE_URL": "throwback.example.org"},
            "THROWBACK_SITE_URL must be an http:// or https://",
        ),
        ({"THROWBACK_SITE_URL": "ftp://throwback.example.org"}, "THROWBACK_SITE_URL must be an http"),
        ({"EMAIL_URL": "smtp//x"}, "EMAIL_URL must start with one of"),
        (
            {"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"},
            "EMAIL_USE_TLS and EMAIL_USE_SSL exclude each other",
        ),
        ({"EMAIL_PORT": "0"}, "EMAIL_PORT must be at least 1"),
    ],
)
def test_bad_mail_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "throwback.settings", "SECRET_KEY": "x", **env}
    command = [sys.executable, "-c", "from django.conf import settings; settings.EMAIL_HOST"]
    result = subprocess.run(command, env=environment, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_site_url_loses_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    from throwback.env import env_site_url

    monkeypatch.setenv("T_SITE", "https://throwback.example.org/")
    assert env_site_url("T_SITE", "http://127.0.0.1:8000") == "https://throwback.example.org"
    assert env_site_url("T_UNSET", "http://127.0.0.1:8000") == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THROWBACK_MATCH_SCALE", "-0.1", "THROWBACK_MATCH_SCALE must be at least 0, not '-0.1'"),
        ("THROWBACK_MATCH_CAP", "2", "THROWBACK_MATCH_CAP must be at most 1.99"),
        ("THROWBACK_LEARNED_PER_SELFIE", "-1", "THROWBACK_LEARNED_PER_SELFIE must be at least 0"),
        ("THROWBACK_SUGGEST_BAND", "0.9", "THROWBACK_SUGGEST_BAND must be at least 1, not '0.9'"),
        ("THROWBACK_ONE_FACE_ONE_PERSON", "sometimes", "THROWBACK_ONE_FACE_ONE_PERSON must be true or false"),
    ],
)
def test_bad_matching_rule_settings_stop_start_up(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    env = {**os.environ, "THROWBACK_DATA_DIR": str(tmp_path), "SECRET_KEY": "x", name: value}
    command = [sys.executable, "-c", "import throwback.settings"]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert f"ImproperlyConfigured: {message}" in result.stderr


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"THALIA_TIMEOUT_SECONDS": "0"}, "THALIA_TIMEOUT_SECONDS must be at least 0.1, not '0'"),
        ({"THALIA_TIMEOUT_SECONDS": "soon"}, "THALIA_TIMEOUT_SECONDS must be a number, not 'soon'"),
        (
            {"THALIA_RETRY_AFTER_MAX_SECONDS": "-1"},
            "THALIA_RETRY_AFTER_MAX_SECONDS must be at least 0, not '-1'",
        ),
        ({"THALIA_MAX_ANSWER_BYTES": "100"}, "THALIA_MAX_ANSWER_BYTES must be at least 1024, not 100"),
        (
            {"THROWBACK_IMPORT_DEADLINE_SECONDS": "-5"},
            "THROWBACK_IMPORT_DEADLINE_SECONDS must be at least 0, not -5",
        ),
        (
            {"THROWBACK_IMPORT_DEADLINE_SECONDS": "6h"},
            "THROWBACK_IMPORT_DEADLINE_SECONDS must be an integer, not '6h'",
        ),
        (
            {"THROWBACK_IMPORT_MAX_MISSING_SHARE": "1.5"},
            "THROWBACK_IMPORT_MAX_MISSING_SHARE must be at most 1, not '1.5'",
        ),
        (
            {"THROWBACK_IMPORT_MAX_MISSING_SHARE": "nan"},
            "THROWBACK_IMPORT_MAX_MISSING_SHARE must be a number, not 'nan'",
        ),
    ],
)
def test_bad_import_limits_stop_start_up(environment: dict[str, str], message: str) -> None:
    assert f"django.core.exceptions.ImproperlyConfigured: {message}\n" in settings_error(**environment)


def test_the_import_limits_have_their_defaults() -> None:
    from django.conf import settings

    assert (
        settings.THALIA_TIMEOUT_SECONDS,
        settings.THALIA_RETRY_AFTER_MAX_SECONDS,
        settings.THALIA_MAX_ANSWER_BYTES,
        settings.THROWBACK_IMPORT_DEADLINE_SECONDS,
        settings.THROWBACK_IMPORT_MAX_MISSING_SHARE,
    ) == (20.0, 60.0, 20 * 1024 * 1024, 6 * 3600, 0.5)


def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path: Path) -> None:
    """The encoder and the web write at once: a transaction that reads first must not fail when it writes."""
    script = (
        "import sqlite3, django; django.setup()\n"
        "from django.db import connection, transaction\n"
        "with transaction.atomic():\n"
        "    connection.cursor().execute('SELECT 1')\n"
        "    other = sqlite3.connect(connection.settings_dict['NAME'], timeout=0)\n"
        "    try:\n"
        "        other.execute('CREATE TABLE probe (x INTEGER)')\n"
        "        print('free')\n"
        "    except sqlite3.OperationalError as exc:\n"
        "        print('held:', exc)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "THROWBACK_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "held: database is locked"


def test_a_check_warns_when_waiting_uploads_could_hold_every_thread(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    settings.THROWBACK_SELFIE_WAITERS = 3
    assert "faces.W004" not in [message.id for message in run_checks()]
    settings.THROWBACK_SELFIE_WAITERS = 4
    assert "faces.W004" in [message.id for message in run_checks()]
