"""The association's website (concrexit) in Throwback: one home for all of it.

Its photos API (client.py), its OAuth / OpenID Connect endpoints (oauth.py),
Throwback's own stored grant (grant.py, models.ThaliaConnection), "Log in
with Thalia" (login.py, views.py), a member's token in their session and the
albums the site lets them see (session.py, models.AlbumAccess), and the
signed photo URLs it hands out.

Other apps use it only through `thalia.services` (and `thalia.urls`, the
login backend and the middleware named in settings); docs/architecture.md
has the module table.
"""
