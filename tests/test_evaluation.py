"""manage.py evaluate: the accuracy protocol through the product, in a throw-away database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from faces.evaluation import EvaluationError, read_labels
from faces.models import Match, Photo
from members.models import Member, ReferenceFace

# The original engine options, pinned so the expected counts do not follow the defaults.
PINNED = [
    "--encode-max-side=500",
    "--upsample=1",
    "--detector=hog",
    "--jitters=1",
    "--selfie-jitters=1",
    "--landmarks=small",
    "--workers=1",
    "--no-progress",
]
LABELS_HEADER = "file,identities,kind,faces_expected\n"


def labelled_folder(root: Path, examples: Path, rows: list[str]) -> Path:
    """A labelled folder of links to face_recognition's examples (in tmp, never copies)."""
    root.mkdir()
    for row in rows:
        name = row.split(",")[0]
        (root / name).symlink_to(examples / name)
    (root / "labels.csv").write_text(LABELS_HEADER + "\n".join(rows) + "\n")
    return root


def evaluate_databases() -> list[str]:
    """Throw-away databases of this test database's evaluations (other checkouts on the
    same server may be evaluating at the same moment under their own names)."""
    own = connection.settings_dict["NAME"].replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{own}\\_evaluate\\_%"])
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_evaluate_scores_the_examples_and_leaves_the_real_database_alone(
    examples: Path, tmp_path: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    keeper = Member.objects.create_user(username="keeper")
    real_name = connection.settings_dict["NAME"]
    media_before = sorted(Path(settings.MEDIA_ROOT).rglob("*"))
    report_file = tmp_path / "report.json"
    stdout = io.StringIO()

    call_command(
        "evaluate", str(examples), "--thresholds=0.6,0.49", f"--json={report_file}", *PINNED, stdout=stdout
    )

    report = json.loads(report_file.read_text())
    assert report["images"] == 25
    assert (report["photos_encoded"], report["photos_failed"], report["faces"]) == (25, 0, 29)
    # Five people have two or more single images; Lin-Manuel Miranda is a distractor.
    assert (report["people"], report["members"], report["references"]) == (5, 5, 5)
    assert report["rejections"] == {}
    scores = [
        {key: s[key] for key in ("threshold", "members", "pairs", "positives", "hits", "false")}
        for s in report["scores"]
    ]
    assert scores == [
        {"threshold": 0.49, "members": 5, "pairs": 120, "positives": 22, "hits": 20, "false": 0},
        {"threshold": 0.6, "members": 5, "pairs": 120, "positives": 22, "hits": 22, "false": 0},
    ]
    assert report["scores"][0]["recall"] == pytest.approx(20 / 22)
    assert report["scores"][0]["false_per_1000"] == 0.0
    assert [(g["photo"], g["expected"], g["detected"]) for g in report["groups"]] == [
        ("face_recognition_examples/two_people.jpg", 2, 2),
        ("face_recognition_examples/obama_and_biden.jpg", None, 3),
        ("face_recognition_examples/kit_with_rose.jpg", None, 2),
    ]
    assert report["options"] == {
        "encode_max_side": 500,
        "upsample": 1,
        "detector": "hog",
        "jitters": 1,
        "selfie_jitters": 1,
        "landmarks": "small",
        "references": 1,
        "workers": 1,
    }
    assert report["import_cpu_seconds"] > 0
    # Each step of the rule at each threshold, cross-validated over 5 folds of members.
    assert [step["name"] for step in report["steps"]] == [
        "today's rule",
        "+ one face, one person",
        "+ learned references",
    ]
    assert [cv["name"] for cv in report["cv"]] == [step["name"] for step in report["steps"]]
    assert all(len(cv["chosen"]) == 5 for cv in report["cv"])
    assert report["rule"]["THROWBACK_MATCH_THRESHOLD"] == 0.49
    assert report["configured"]["hits"] == 20 and report["configured"]["false"] == 0
    assert report["answered"]["hits"] >= report["configured"]["hits"]
    assert stdout.getvalue().splitlines()[-1] == (
        "Evaluated 25 images, 5 members: recall 0.909 with 0 false matches (0.00 per 1,000) as configured; "
        f"{report['answered']['recall']:.3f} after {report['questions']:.1f} answers per member"
    )

    # The real database and media: as before, and the throw-away database is gone.
    assert connection.settings_dict["NAME"] == real_name
    assert list(Member.objects.values_list("username", flat=True)) == ["keeper"]
    assert Member.objects.get() == keeper
    assert (Photo.objects.count(), ReferenceFace.objects.count(), Match.objects.count()) == (0, 0, 0)
    assert evaluate_databases() == []
    assert sorted(Path(settings.MEDIA_ROOT).rglob("*")) == media_before


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_swept_value_is_a_rebuild_of_the_product_rule(examples: Path, tmp_path: Path) -> None:
    """A value's score does not depend on the other values swept, and the configured rule is the step it names."""
    folder = labelled_folder(
        tmp_path / "mini",
        examples,
        [
            "obama.jpg,Barack_Obama,single,",
            "obama2.jpg,Barack_Obama,single,",
            "obama_small.jpg,Barack_Obama,single,",
            "biden.jpg,Joe_Biden,single,",
            "biden2.jpg,Joe_Biden,single,",
            "kit_harington_john1.jpeg,Kit_Harington,single,",
            "two_people.jpg,Barack_Obama;Joe_Biden,group,2",
            "lin-manuel-miranda.png,Lin-Manuel_Miranda,distractor,",
        ],
    )
    reports = {}
    for thresholds in ("0.3,0.49,0.7", "0.49"):
        target = tmp_path / f"{thresholds}.json"
        call_command(
            "evaluate",
            str(folder),
            f"--thresholds={thresholds}",
            "--folds=2",
            f"--json={target}",
            *PINNED,
            stdout=io.StringIO(),
        )
        reports[thresholds] = json.loads(target.read_text())
    combined, single = reports["0.3,0.49,0.7"], reports["0.49"]
    for wide, one in zip(combined["steps"], single["steps"], strict=True):
        assert wide["scores"][1] == one["scores"][0]
    today = {s["threshold"]: s for s in combined["steps"][0]["scores"]}
    # Kit Harington has one image: not a member. Obama and Biden: 2 members, 7 photos each;
    # Obama is in obama2, obama_small and two_people, Biden in biden2 and two_people.
    assert (today[0.7]["members"], today[0.7]["pairs"]) == (2, 14)
    assert (today[0.7]["positives"], today[0.7]["hits"]) == (5, 5)
    assert today[0.3]["hits"] < today[0.7]["hits"]
    # The configured rule (0.49, one face one person, learning off in the test settings).
    one_face = combined["steps"][1]["scores"][1]
    assert {k: combined["configured"][k] for k in ("pairs", "positives", "hits", "false")} == {
        k: one_face[k] for k in ("pairs", "positives", "hits", "false")
    }


def test_a_folder_without_labels_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=f"^{tmp_path}/labels.csv not found: not a labelled folder$"):
        call_command("evaluate", str(tmp_path), "--no-progress")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "obama.jpg,Barack_Obama,portrait,",
            r"line 2: needs a file and a kind \(distractor, group, noface, single\)",
        ),
        ("missing.jpg,Barack_Obama,single,", r"line 2: .*/missing.jpg not found"),
        ("obama.jpg,Barack_Obama,group,two", r"line 2: faces_expected 'two' is not a number"),
    ],
)
def test_bad_labels_are_refused_with_their_line(
    examples: Path, tmp_path: Path, row: str, message: str
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "obama.jpg").symlink_to(examples / "obama.jpg")
    (folder / "labels.csv").write_text(LABELS_HEADER + row + "\n")
    with pytest.raises(EvaluationError, match=message):
        read_labels([folder])


def test_two_folders_with_one_name_are_refused(examples: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "face_recognition_examples").symlink_to(examples)
    with pytest.raises(EvaluationError, match="two folders have the same name"):
        read_labels([examples, tmp_path / "a" / "face_recognition_examples"])


def test_labels_are_read_with_the_protocol_fields(examples: Path) -> None:
    images = read_labels([examples])
    assert len(images) == 25
    group = next(i for i in images if i.file == "two_people.jpg")
    assert (group.identities, group.kind, group.faces_expected, group.scored) == (
        frozenset({"Barack_Obama", "Joe_Biden"}),
        "group",
        2,
        True,
    )
    assert group.source_id == "face_recognition_examples/two_people.jpg"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--thresholds=0.4,x"], "--thresholds must be comma-separated numbers, not '0.4,x'"),
        (["--thresholds=0.4,2.5"], "thresholds must lie between 0 and 2"),
        (["--references=0"], "enrol at least one reference per member"),
        (["--jitters=0"], "--jitters must be at least 1"),
        (["--workers=0"], "--workers must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(examples: Path, arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=f"^{message}$"):
        call_command("evaluate", str(examples), "--no-progress", *arguments)
