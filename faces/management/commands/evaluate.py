"""manage.py evaluate: recall and false matches on labelled folders (docs/accuracy.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from faces.evaluation import EvaluationError, evaluate, format_report
from faces.imports.importer import default_workers

DEFAULT_THRESHOLDS = "0.40,0.45,0.49,0.55,0.60"


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise CommandError(f"--{option} must be comma-separated numbers, not {text!r}") from None


class Command(BaseCommand):
    help = (
        "Import labelled folders (a labels.csv each, as in ../shared/faces) into a throw-away "
        "database, enrol one selfie per person and report recall and false matches of the matching rule, "
        'step by step, cross-validated, and after honest answers to "Is this you?".'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folders", nargs="+", type=Path, help="labelled folders (each with labels.csv)")
        parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
        parser.add_argument(
            "--thresholds", default=DEFAULT_THRESHOLDS, help=f"comma-separated (default {DEFAULT_THRESHOLDS})"
        )
        parser.add_argument(
            "--scales",
            default="",
            help="comma-separated THROWBACK_MATCH_SCALE values: also measure local limits (default: none)",
        )
        parser.add_argument(
            "--references", type=int, default=1, help="selfies enrolled per person (default 1)"
        )
        parser.add_argument(
            "--folds", type=int, default=5, help="folds of members for cross-validation (default 5)"
        )
        parser.add_argument(
            "--no-answers", action="store_true", help='do not answer "Is this you?" from the labels'
        )
        parser.add_argument("--workers", type=int, help="encoding processes (default: as import_albums)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        engine = parser.add_argument_group("engine options (default: the settings)")
        engine.add_argument("--encode-max-side", type=int, help="THROWBACK_ENCODE_MAX_SIDE, pixels")
        engine.add_argument("--upsample", type=int, choices=range(4), help="THROWBACK_DETECT_UPSAMPLE")
        engine.add_argument("--detector", choices=("hog", "cnn"), help="THROWBACK_DETECTOR")
        engine.add_argument("--jitters", type=int, help="THROWBACK_ENCODE_JITTERS")
        engine.add_argument("--selfie-jitters", type=int, help="THROWBACK_SELFIE_JITTERS")
        engine.add_argument("--landmarks", choices=("small", "large"), help="THROWBACK_LANDMARKS")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = default_workers() if options["workers"] is None else options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        for name in ("encode_max_side", "jitters", "selfie_jitters"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        overrides = {
            key: options[key]
            for key in ("encode_max_side", "upsample", "detector", "jitters", "selfie_jitters", "landmarks")
        }
        try:
            report = evaluate(
                options["folders"],
                thresholds=_numbers(options["thresholds"], "thresholds"),
                scales=_numbers(options["scales"], "scales"),
                overrides=overrides,
                references=options["references"],
                workers=workers,
                folds=options["folds"],
                answer=not options["no_answers"],
                progress=None if options["no_progress"] else _progress_bar(),
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in format_report(report):
            self.stdout.write(line)
        if options["json"]:
            options["json"].write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        configured = report.configured
        if configured is None:
            raise CommandError("nothing was scored")
        answered = (
            ""
            if report.answered is None
            else f"; {report.answered.recall or 0:.3f} after {report.questions or 0:.1f} answers per member"
        )
        self.stdout.write(
            f"Evaluated {report.images} images, {report.members} members: recall {configured.recall or 0:.3f} "
            f"with {configured.false} false matches ({configured.false_per_1000 or 0:.2f} per 1,000) "
            f"as configured{answered}"
        )


def _progress_bar() -> Callable[[int, int], None] | None:
    if not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm[Any]] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="photo", file=sys.stderr)
        bar["bar"].update(1)
        if done == total:
            bar.pop("bar").close()

    return update
