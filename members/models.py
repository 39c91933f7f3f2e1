"""Members, their consent, and the reference faces ("selfies") they upload."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from faces.fields import PROJECTION_FIELDS, PROJECTION_NORM_FIELD, ProjectedEncodingModel


class Member(AbstractUser):
    """A local account; consent to face processing is recorded with its time.

    `thalia_id` links the account to a member of the association's website
    (the OpenID Connect `sub`); it is set once, at the first "Log in with
    Thalia", and found again at every later one. Local accounts have none.
    """

    consent_given_at = models.DateTimeField(null=True, blank=True)
    thalia_id = models.CharField(max_length=255, unique=True, null=True, blank=True, editable=False)
    # "New photos of you" digests (members/notifications.py): opted in on the
    # privacy page, off by default. Photos encoded up to `notified_until` have
    # been told (or were there before the member opted in).
    notify_new_photos = models.BooleanField(default=False)
    notified_until = models.DateTimeField(null=True, blank=True)

    @property
    def has_consented(self) -> bool:
        return self.consent_given_at is not None


class ReferenceFaceQuerySet(models.QuerySet["ReferenceFace"]):
    def selfies(self) -> ReferenceFaceQuerySet:
        """The selfies members uploaded: the only references ever shown or counted against the limit."""
        return self.filter(kind=ReferenceFace.Kind.SELFIE)


class ReferenceFace(ProjectedEncodingModel):
    """A face a member is matched with: an uploaded selfie, or one Throwback derived from them.

    Selfies carry the image and the box of their one face. The other kinds
    have no image and are never shown to anyone (docs/accuracy.md): the mean
    of two or more selfies' encodings (`MEAN`), a photo face matched far
    inside a selfie's limit (`LEARNED`), and a photo face the member said
    "Yes, that's me" about (`CONFIRMED`); the last two point at that face.
    Each reference matches the photo faces within its own `match_limit`.
    """

    class Kind(models.TextChoices):
        SELFIE = "selfie", "Selfie"
        MEAN = "mean", "Mean of the selfies"
        LEARNED = "learned", "Learned from a confident match"
        CONFIRMED = "confirmed", "Confirmed by the member"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="references")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SELFIE)
    # Stored under a random name (see services.reference_add), never served publicly.
    image = models.ImageField(upload_to="references/", max_length=200, blank=True)
    top = models.PositiveIntegerField(default=0)
    right = models.PositiveIntegerField(default=0)
    bottom = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    # A photo face is matched when its distance is at most this (faces.limits).
    match_limit = models.FloatField(default=0.49)
    # LEARNED and CONFIRMED: the photo face this reference copies; it goes with it.
    source_face = models.ForeignKey(
        "faces.FaceEncoding", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Selfies: why this selfie may find few photos ("small", "dark", "blurred", "turned").
    warnings = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = ReferenceFaceQuerySet.as_manager()

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(match_limit__gte=0), name="reference_limit_positive"),
            models.UniqueConstraint(
                fields=["member", "source_face"],
                condition=models.Q(source_face__isnull=False),
                name="reference_unique_member_source_face",
            ),
        ]
        indexes = [
            # A new face is compared with every reference's projection read from
            # this index alone (PostgreSQL; elsewhere it is on id only).
            models.Index(
                fields=["id"],
                include=["match_limit", PROJECTION_NORM_FIELD, *PROJECTION_FIELDS],
                name="reference_projection",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.pk} of {self.member}"

    @property
    def warning_messages(self) -> list[str]:
        """What each stored warning means, in the member's words."""
        from members.selfie_quality import MESSAGES

        return [MESSAGES[code] for code in self.warnings if code in MESSAGES]


class LookAlike(models.Model):
    """Selfies of two members within the match threshold of each other.

    Siblings and twins: photos of one may be shown to the other, so both are
    warned on their selfie page (without anything of the other member) and
    asked to add selfies. One row per pair, the lower selfie id first; kept
    current by members.services (a selfie added, deleted, data deleted) and
    rebuilt by `manage.py rematch`.
    """

    reference = models.ForeignKey(ReferenceFace, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(ReferenceFace, on_delete=models.CASCADE, related_name="+")
    distance = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "look-alike selfie pair"
        constraints = [
            models.UniqueConstraint(fields=["reference", "other"], name="lookalike_unique_pair"),
            models.CheckConstraint(
                condition=models.Q(reference__lt=models.F("other")), name="lookalike_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"selfies {self.reference_id} and {self.other_id} look alike ({self.distance:.3f})"


class SelfieUpload(models.Model):
    """One selfie upload on its way from the request to the encoder (members/selfies.py).

    The request stores the file and a `QUEUED` row and answers at once; an
    encoder process (`manage.py run_encoder`) claims the row (`ANALYSING`,
    `attempts` + 1, `claimed_by`, `heartbeat` renewed while it works), runs
    `services.reference_add` and ends it `DONE` with its `reference`, or
    `REFUSED` with the refusal's stable `code` and the member's `message`.
    A claim whose heartbeat is older than THROWBACK_ENCODER_LEASE_SECONDS
    belonged to an encoder that died: queued once more, then refused. The
    uploaded file is deleted when the row ends (the selfie keeps its own
    re-encoded JPEG), so only the row stays, for the status URL and the
    per-member rate limit.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        ANALYSING = "analysing", "Analysing"
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="selfie_uploads")
    # Stored under a random name until the analysis ends, never served.
    file = models.FileField(upload_to="uploads/", max_length=200, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    code = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=100, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    reference = models.ForeignKey(
        ReferenceFace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "id"], name="selfieupload_state"),
            models.Index(fields=["member", "created"], name="selfieupload_member_created"),
        ]

    def __str__(self) -> str:
        return f"selfie upload {self.pk} of {self.member} ({self.state})"

    @property
    def pending(self) -> bool:
        """Queued or being analysed: the member is still waiting for an answer."""
        return self.state in (self.State.QUEUED, self.State.ANALYSING)
