"""Request type for views behind login_required, where the user is a Member."""

from __future__ import annotations

from django.http import HttpRequest

from members.models import Member


class MemberRequest(HttpRequest):
    user: Member  # narrowed by login_required
