"""Pages: landing, the member's photos (all, by year, one), downloads and "not me"."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from faces import downloads, selectors, services
from faces.models import Album, Photo
from faces.services import photo_content_type
from members.http import MemberRequest


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page for visitors, My photos for members."""
    if not request.user.is_authenticated:
        return render(request, "faces/landing.html")
    return photos(request)  # type: ignore[arg-type]


# One grid tile. Rendered here rather than by the template: 60 tiles of nine
# template variables each were half of the page's CPU time. Every value is
# HTML-escaped (the album's texts once per album), as the template would.
TILE = (
    '<li><a class="tile" href="{page}" data-id="{pk}" data-src="{src}" data-download="{download}" data-not-me="{not_me}" '
    'data-caption="{caption}"><img src="{src}" alt="Photo {number} of you at {title}" loading="lazy"></a></li>'
)
TILE_UNAVAILABLE = '<li><span class="unavailable">Temporarily unavailable</span></li>'


def _tiles_html(
    album: selectors.AlbumRow,
    caption: str,
    pairs: list[tuple[selectors.PhotoRow, str | None]],
    links: list[Callable[[int], str]],
) -> SafeString:
    """The <li> tiles of one album's photos; links: the photo's page, download and "not me"."""
    page_url, download_url, not_me_url = links
    caption, title = escape(caption), escape(album.title)
    return mark_safe(  # noqa: S308 - every value below is escaped
        "\n".join(
            TILE.format(
                page=escape(page_url(photo.pk)),
                pk=photo.pk,
                src=escape(url),
                download=escape(download_url(photo.pk)),
                not_me=escape(not_me_url(photo.pk)),
                caption=caption,
                number=number,
                title=title,
            )
            if url
            else TILE_UNAVAILABLE
            for number, (photo, url) in enumerate(pairs, start=1)
        )
    )


def _grid_context(request: MemberRequest, *, year: int | None = None) -> dict[str, object]:
    """A page of the member's photos (of one year) grouped by album, with the URLs the browser loads them from."""
    page = selectors.photo_page(request.user, request.GET.get("page"), year=year)
    album_url = selectors.url_builder("faces:album_download")
    links = [
        selectors.url_builder(name) for name in ("faces:photo", "faces:photo_download", "faces:photo_not_me")
    ]
    albums = []
    pairs = selectors.with_display_urls(list(page.object_list))
    for album, items in groupby(pairs, key=lambda pair: pair[0].album):
        photos = list(items)
        caption = f"{album.title}, {date_format(album.date, 'j F Y')}" if album.date else album.title
        albums.append(
            {
                "album": album,
                "count": len(photos),
                "download_url": album_url(album.pk),
                "tiles": _tiles_html(album, caption, photos, links),
            }
        )
    return {
        "page": page,
        "albums": albums,
        # Matches need a selfie: only a member without photos here is asked.
        "has_references": page.paginator.count > 0 or request.user.references.selfies().exists(),
        "years": selectors.member_years(request.user),
    }


@login_required
def photos(request: MemberRequest) -> HttpResponse:
    context = _grid_context(request)
    # "On this day" heads the first page only.
    if context["page"].number == 1:  # type: ignore[attr-defined]
        context["on_this_day"] = selectors.member_on_this_day(request.user, today=timezone.localdate())
    context["suggestions"] = selectors.member_suggestions(request.user)
    return render(request, "faces/photos.html", context)


@require_POST
@login_required
def suggestion_answer(request: MemberRequest, suggestion_id: int) -> HttpResponse:
    """ "Is this you?" answered: `answer` is "yes" or "no"; 404 for anyone else's offer."""
    answer = request.POST.get("answer")
    if answer not in ("yes", "no"):
        return HttpResponse("Answer yes or no.", status=400, content_type="text/plain")
    if not services.suggestion_answer(member=request.user, suggestion_id=suggestion_id, yes=answer == "yes"):
        raise Http404("No such question")
    if answer == "yes":
        messages.success(request, "Thanks! That photo is in your photos now, and it helps find you in more.")
    else:
        messages.success(request, "Thanks, we will not ask about that face again.")
    return redirect("members:photos")


@require_GET
@login_required
def years(request: MemberRequest) -> HttpResponse:
    return render(request, "faces/years.html", {"years": selectors.member_years(request.user)})


@require_GET
@login_required
def year(request: MemberRequest, year: int) -> HttpResponse:
    context = _grid_context(request, year=year)
    return render(request, "faces/year.html", {**context, "year": year})


def _get_photo_for_member(request: MemberRequest, photo_id: int) -> Photo:
    """A photo the member is matched in, or 404 (never reveal that it exists)."""
    photo = Photo.objects.matched_to(request.user).filter(pk=photo_id).first()
    if photo is None:
        raise Http404("No such photo")
    return photo


@require_GET
@login_required
def photo_detail(request: MemberRequest, photo_id: int) -> HttpResponse:
    photo = _get_photo_for_member(request, photo_id)
    [(photo, url)] = selectors.with_display_urls([photo])
    return render(request, "faces/photo.html", {"photo": photo, "url": url})


@require_GET
@login_required
def photo_file(request: MemberRequest, photo_id: int) -> HttpResponseBase:
    """A folder photo's file, for a member matched in it, who hid it ("not me", for the
    privacy page's list) or who is asked "Is this you?" about it; else 404."""
    member = request.user
    photo = (
        selectors.member_photos(member).filter(pk=photo_id).first()
        or selectors.hidden_photo(member, photo_id)
        or selectors.suggested_photo(member, photo_id)
    )
    if photo is None or not photo.file:
        raise Http404("No such photo")
    try:
        handle = default_storage.open(photo.file.name, "rb")
    except FileNotFoundError:
        raise Http404("Photo file missing") from None
    response = FileResponse(handle, content_type=photo_content_type(photo))
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
def photo_download(request: MemberRequest, photo_id: int) -> HttpResponseBase:
    photo = _get_photo_for_member(request, photo_id)
    try:
        file = downloads.photo_open(photo)
    except downloads.PhotoUnavailable:
        return render(request, "faces/unavailable.html", {"photo": photo}, status=503)
    response = StreamingHttpResponse(file.chunks, content_type=file.content_type)
    response["Content-Disposition"] = content_disposition_header(True, file.name) or "attachment"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def album_download(request: MemberRequest, album_id: int) -> HttpResponseBase:
    """All of the member's photos in one album as a streamed zip; 404 when there are none."""
    photos = selectors.member_album_photos(request.user, album_id)
    if not photos:
        raise Http404("No photos of yours in this album")
    album: Album = photos[0].album
    response = StreamingHttpResponse(downloads.photos_zip(photos), content_type="application/zip")
    response["Content-Disposition"] = (
        content_disposition_header(True, downloads.zip_file_name(album)) or "attachment"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@login_required
def photo_not_me(request: MemberRequest, photo_id: int) -> HttpResponse:
    if not services.photo_dismiss(member=request.user, photo_id=photo_id):
        raise Http404("No such photo")
    messages.success(
        request, "Hidden. We will not show you that photo again.", extra_tags=f"undo-photo {photo_id}"
    )
    return redirect(_next_or(request, reverse("members:photos")))


@require_POST
@login_required
def photo_restore(request: MemberRequest, photo_id: int) -> HttpResponse:
    """Undo "not me" (the message's Undo button, the privacy page's list of hidden photos)."""
    if not services.photo_restore(member=request.user, photo_id=photo_id):
        raise Http404("No such hidden photo")
    messages.success(request, "Shown again on My photos.")
    return redirect(_next_or(request, reverse("members:photos")))


def _next_or(request: HttpRequest, default: str) -> str:
    """The form's `next` when it is a URL of this site, else `default`."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default
