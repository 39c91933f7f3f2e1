"""The face engine's options: environment variables, services.engine_options and checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from faces.engine import EngineOptions
from faces.services import engine_options
from tests.conftest import REPO
from throwback.env import env_choice


def test_env_choice_reads_a_word_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CHOICE", " CNN ")
    assert env_choice("T_CHOICE", "hog", ("hog", "cnn")) == "cnn"
    monkeypatch.setenv("T_CHOICE", "")
    assert env_choice("T_CHOICE", "hog", ("hog", "cnn")) == "hog"
    assert env_choice("T_UNSET", "small", ("small", "large")) == "small"


def test_env_choice_refuses_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CHOICE", "gpu")
    with pytest.raises(ImproperlyConfigured, match="^T_CHOICE must be one of hog, cnn, not 'gpu'$"):
        env_choice("T_CHOICE", "hog", ("hog", "cnn"))


def settings_values(names: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
    """Print the settings' values in a fresh interpreter with this environment."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "throwback.settings", **environment}
    values = ", ".join(f"settings.{name}" for name in names)
    command = [sys.executable, "-c", f"from django.conf import settings; print(repr(({values},)))"]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)


def test_engine_settings_come_from_the_environment() -> None:
    result = settings_values(
        [
            "THROWBACK_DETECTOR",
            "THROWBACK_LANDMARKS",
            "THROWBACK_DETECT_UPSAMPLE",
            "THROWBACK_ENCODE_JITTERS",
            "THROWBACK_SELFIE_JITTERS",
        ],
        THROWBACK_DETECTOR="cnn",
        THROWBACK_LANDMARKS="Large",
        THROWBACK_DETECT_UPSAMPLE="0",
        THROWBACK_ENCODE_JITTERS="3",
        THROWBACK_SELFIE_JITTERS="7",
    )
    assert result.stdout == "('cnn', 'large', 0, 3, 7)\n", result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("THROWBACK_DETECTOR", "gpu", "THROWBACK_DETECTOR must be one of hog, cnn, not 'gpu'"),
        ("THROWBACK_LANDMARKS", "68", "THROWBACK_LANDMARKS must be one of small, large, not '68'"),
        ("THROWBACK_DETECT_UPSAMPLE", "-1", "THROWBACK_DETECT_UPSAMPLE must be at least 0, not -1"),
        ("THROWBACK_ENCODE_JITTERS", "0", "THROWBACK_ENCODE_JITTERS must be at least 1, not 0"),
        ("THROWBACK_SELFIE_JITTERS", "many", "THROWBACK_SELFIE_JITTERS must be an integer, not 'many'"),
        ("THROWBACK_ENCODE_MAX_SIDE", "32", "THROWBACK_ENCODE_MAX_SIDE must be at least 64, not 32"),
    ],
)
def test_bad_engine_settings_stop_start_up(variable: str, value: str, message: str) -> None:
    result = settings_values(["THROWBACK_DETECTOR"], **{variable: value})
    assert result.returncode == 1
    assert f"django.core.exceptions.ImproperlyConfigured: {message}\n" in result.stderr


def test_engine_options_follow_the_settings_and_selfies_their_own_jitters(settings) -> None:  # type: ignore[no-untyped-def]
    settings.THROWBACK_ENCODE_MAX_SIDE = 1200
    settings.THROWBACK_MAX_IMAGE_PIXELS = 1_000_000
    settings.THROWBACK_DETECT_UPSAMPLE = 2
    settings.THROWBACK_DETECTOR = "cnn"
    settings.THROWBACK_ENCODE_JITTERS = 2
    settings.THROWBACK_SELFIE_JITTERS = 9
    settings.THROWBACK_LANDMARKS = "large"
    photo = EngineOptions(
        max_side_px=1200, max_pixels=1_000_000, upsample=2, detector="cnn", jitters=2, landmarks="large"
    )
    assert engine_options() == photo
    assert engine_options(selfie=True) == EngineOptions(
        max_side_px=1200,
        max_pixels=1_000_000,
        upsample=2,
        detector="cnn",
        jitters=9,
        landmarks="large",
        pose=True,
    )


def test_checks_warn_about_costly_engine_options(settings) -> None:  # type: ignore[no-untyped-def]
    assert {m.id for m in run_checks()} & {"faces.W002", "faces.W003"} == set()
    settings.THROWBACK_DETECTOR = "cnn"
    settings.THROWBACK_DETECT_UPSAMPLE = 3
    messages = {m.id: m.msg for m in run_checks() if m.id in ("faces.W002", "faces.W003")}
    assert messages == {
        "faces.W002": "THROWBACK_DETECTOR is cnn: dlib's CNN detector takes seconds per photo without a GPU",
        "faces.W003": "THROWBACK_DETECT_UPSAMPLE is 3: each upsampling makes detection about four times slower",
    }
