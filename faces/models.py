"""Albums, photos, the faces found in them, and who was matched to which face.

What the association website granted (the albums each Thalia member may see,
Throwback's own connection) lives in thalia/models.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q

from faces.fields import PROJECTION_FIELDS, PROJECTION_NORM_FIELD, ProjectedEncodingModel


class Album(models.Model):
    class Source(models.TextChoices):
        CONCREXIT = "concrexit", "Association website"
        FOLDER = "folder", "Local folder"

    source = models.CharField(max_length=20, choices=Source.choices)
    source_id = models.CharField(max_length=255, help_text="Slug on the website, or folder name.")
    title = models.CharField(max_length=255)
    date = models.DateField(null=True, blank=True)
    # Hidden by an admin; imports never change it.
    hidden = models.BooleanField(default=False)
    # No longer listed at the source (deleted, hidden or inaccessible there).
    missing = models.BooleanField(default=False)
    # Where it was last listed: the imported folder, or the website's address.
    location = models.CharField(max_length=1000, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [F("date").desc(nulls_last=True), "-created"]
        constraints = [models.UniqueConstraint(fields=["source", "source_id"], name="album_unique_source_id")]

    def __str__(self) -> str:
        return self.title


class PhotoQuerySet(models.QuerySet["Photo"]):
    def visible_to(self, member: settings.AUTH_USER_MODEL, *, dismissed: bool = False) -> PhotoQuerySet:  # type: ignore[name-defined]
        """Photos in albums the member may see: not hidden, not missing, not dismissed ("not me").

        Dismissed photos are left in with `dismissed`. A member who logged in
        with Thalia sees website albums only when the site said they may open
        them (thalia's AlbumAccess rows, read through the `album_access`
        relation); folder albums and local accounts are not limited by the
        website. Whatever shows a member a photo (matches, "Is this you?")
        starts here.
        """
        visible = self.filter(album__hidden=False, album__missing=False)
        if not dismissed:
            visible = visible.exclude(Exists(Dismissal.objects.filter(member=member, photo=OuterRef("pk"))))
        if getattr(member, "thalia_id", None):
            allowed = member.album_access.values("album_slug")
            visible = visible.filter(
                ~Q(album__source=Album.Source.CONCREXIT) | Q(album__source_id__in=allowed)
            )
        return visible

    def matched_to(self, member: settings.AUTH_USER_MODEL, *, dismissed: bool = False) -> PhotoQuerySet:  # type: ignore[name-defined]
        """Photos the member appears in, in visible albums (`visible_to`), newest album first.

        faces/selectors.py (MATCHED_FROM) repeats these rules as SQL for the
        grid and the API; change both (tests/test_photo_rows.py compares them).
        """
        # A semi-join on the member's matches (an index-only scan of
        # match_member_face_idx) rather than a join: no DISTINCT over whole
        # rows, so counting and paging stay cheap.
        matched_photo_ids = Match.objects.filter(member=member).values("face__photo_id")
        matched = self.visible_to(member, dismissed=dismissed).filter(pk__in=matched_photo_ids)
        return matched.select_related("album").order_by(
            F("album__date").desc(nulls_last=True), "-album__created", "album_id", "id"
        )


class Photo(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be encoded"
        # Taken by one import run or Celery worker (see services.photos_claim).
        CLAIMED = "claimed", "Being encoded"
        DONE = "done", "Encoded"
        FAILED = "failed", "Failed"

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="photos")
    source_id = models.CharField(
        max_length=500, help_text="Photo pk on the website, or path relative to the folder."
    )
    # Folder imports: the photo copied into media storage.
    file = models.FileField(upload_to="photos/", blank=True, max_length=500)
    # Folder imports: where it was read from; website imports: the file's URL path
    # without its signature (a new path means a new file).
    origin = models.CharField(max_length=1000, blank=True)
    # Website imports: signed URLs by variant ("full", "large", …) and when fetched.
    remote_urls = models.JSONField(default=dict, blank=True)
    urls_fetched_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    encoded_at = models.DateTimeField(null=True, blank=True)
    # Who is encoding it ("host:pid:random") and since when; a claim whose
    # process is gone or older than THROWBACK_CLAIM_TIMEOUT_SECONDS is stale.
    claimed_by = models.CharField(max_length=300, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = PhotoQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["album", "source_id"], name="photo_unique_source_id")]
        indexes = [models.Index(fields=["status"], name="photo_status_idx")]

    def __str__(self) -> str:
        return f"{self.album} / {self.source_id}"


class FaceCluster(ProjectedEncodingModel):
    """A k-means centroid of the stored faces: one list of the face index.

    Built by `manage.py build_face_index` (faces/index.py); a selfie is
    compared with the faces of its nearest few clusters only. The 128
    columns hold the centroid.
    """

    # Faces assigned when the index was built (new faces are not counted).
    size = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"face cluster {self.pk} ({self.size} faces)"


class FaceEncoding(ProjectedEncodingModel):
    """One face detected in a photo: its box (original pixels) and 128-d encoding."""

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="faces")
    top = models.PositiveIntegerField()
    right = models.PositiveIntegerField()
    bottom = models.PositiveIntegerField()
    left = models.PositiveIntegerField()
    # The face index's nearest centroid; null until assigned (always searched).
    cluster = models.ForeignKey(
        FaceCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="faces"
    )

    class Meta:
        indexes = [
            # A probe of the face index reads its clusters' ids and projections
            # from this index alone (PostgreSQL; elsewhere it is on cluster only).
            models.Index(
                fields=["cluster"],
                include=["id", PROJECTION_NORM_FIELD, *PROJECTION_FIELDS],
                name="face_cluster_projection",
            ),
        ]

    def __str__(self) -> str:
        return f"face {self.pk} in photo {self.photo_id}"


class Match(models.Model):
    """A member's reference face within the threshold of a photo face.

    Stored so that the photos page is an indexed lookup, recomputed by
    `manage.py rematch`.
    """

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="matches")
    reference = models.ForeignKey("members.ReferenceFace", on_delete=models.CASCADE, related_name="matches")
    face = models.ForeignKey(FaceEncoding, on_delete=models.CASCADE, related_name="matches")
    distance = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference", "face"], name="match_unique_reference_face"),
            models.CheckConstraint(condition=Q(distance__gte=0), name="match_distance_positive"),
        ]
        indexes = [models.Index(fields=["member", "face"], name="match_member_face_idx")]

    def __str__(self) -> str:
        return f"{self.member} ~ face {self.face_id} ({self.distance:.3f})"


class Dismissal(models.Model):
    """A member said "not me" about a photo: it stays hidden from them.

    Kept per (member, photo), not per match, so it survives `rematch`, new
    selfies and the photo being encoded again.
    """

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dismissals")
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="dismissals")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "photo"], name="dismissal_unique_member_photo")
        ]

    def __str__(self) -> str:
        return f"{self.member} is not in photo {self.photo_id}"


class Suggestion(models.Model):
    """ "Is this you?": a photo face just outside a member's limits, offered to them.

    Made by matching (faces.services.assignment) for faces within the wider
    band of a member's references that no one was assigned. "Yes" makes the
    face a confirmed reference of the member; "No" keeps the row so the face
    is never offered again. Open suggestions are recomputed with the matches.
    """

    class Answer(models.TextChoices):
        OPEN = "", "Not answered"
        YES = "yes", "Yes, that's me"
        NO = "no", "No, not me"

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suggestions")
    face = models.ForeignKey(FaceEncoding, on_delete=models.CASCADE, related_name="suggestions")
    distance = models.FloatField()
    answer = models.CharField(max_length=3, choices=Answer.choices, default=Answer.OPEN, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "face"], name="suggestion_unique_member_face")
        ]

    def __str__(self) -> str:
        return f"is {self.member} face {self.face_id}? {self.answer or 'open'}"


class ImportRun(models.Model):
    """One run of `manage.py import_albums`: when, from where, and its summary."""

    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Album.Source.choices)
    location = models.CharField(max_length=1000, blank=True)
    # The run's process, "host:pid:random" (also on the photos it claims), and
    # when it last said it lives: how a later run tells a killed run from a live one.
    owner = models.CharField(max_length=300, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    albums = models.PositiveIntegerField(default=0)
    photos_new = models.PositiveIntegerField(default=0)
    photos_changed = models.PositiveIntegerField(default=0)
    photos_unchanged = models.PositiveIntegerField(default=0)
    photos_removed = models.PositiveIntegerField(default=0)
    # Photos pending or claimed when this run began (left by an earlier run, marked
    # for re-encoding), unchanged at the source: encoded by this run unless held elsewhere.
    photos_resumed = models.PositiveIntegerField(default=0)
    photos_encoded = models.PositiveIntegerField(default=0)
    photos_failed = models.PositiveIntegerField(default=0)
    faces = models.PositiveIntegerField(default=0)
    matches = models.PositiveIntegerField(default=0)
    # Album and photo errors of the run (one a line), and why a run stopped.
    errors = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started", "-id"]

    def __str__(self) -> str:
        return f"import from {self.location or self.source} at {self.started:%Y-%m-%d %H:%M}"
