"""manage.py build_face_index: train the face index's clusters and assign every face."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from faces.index import face_index_build, face_index_drop, projection_refresh


class Command(BaseCommand):
    help = (
        "Train k-means centroids on the stored faces and assign each face to its nearest one, so a "
        "selfie is compared only with the faces of its nearest clusters (safe to re-run)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clusters",
            type=int,
            help="number of clusters (default: twice the square root of the number of faces)",
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed of the training (default 0)")
        parser.add_argument(
            "--cluster",
            action="store_true",
            help="then rewrite the face table in cluster order (PostgreSQL CLUSTER: faster probes, but every "
            "query on faces waits while it runs, about a minute at a million faces)",
        )
        parser.add_argument(
            "--drop", action="store_true", help="remove the index: every face is compared again"
        )
        parser.add_argument(
            "--reproject",
            action="store_true",
            help="only recompute every face's and reference's projection columns (pc0 …) from its encoding, "
            "after faces/projection.json changed (system check faces.E011)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reproject"]:
            rows = projection_refresh()
            self.stdout.write(f"Projection recomputed for {rows:,} faces, centroids and references.")
            return
        if options["drop"]:
            removed = face_index_drop()
            self.stdout.write(f"Face index removed ({removed} clusters); every face is compared again.")
            return
        if options["clusters"] is not None and options["clusters"] < 1:
            raise CommandError("--clusters must be at least 1")
        build = face_index_build(
            clusters=options["clusters"], seed=options["seed"], cluster_table=options["cluster"]
        )
        state = "on" if settings.THROWBACK_FACE_INDEX else "off (THROWBACK_FACE_INDEX=false)"
        self.stdout.write(
            f"Face index built: {build.faces:,} faces in {build.clusters:,} clusters in {build.seconds:.1f} s; "
            f"a selfie probes the clusters within its limit + {settings.THROWBACK_FACE_INDEX_REACH} "
            f"(at most {settings.THROWBACK_FACE_INDEX_PROBE}); index {state}."
        )
