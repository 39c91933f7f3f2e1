"""A real OpenID Connect provider on 127.0.0.1 that behaves like concrexit's.

concrexit (svthalia/concrexit at commit 116602b) is django-oauth-toolkit 2.4.0
(the version its uv.lock pins) on oauthlib 3.3.1, with OIDC enabled and an RSA
key. Each behaviour below names the line of those sources it copies; the
paths are ``website/…`` in concrexit, ``oauth2_provider/…`` in
django-oauth-toolkit (DOT) and ``oauthlib/…`` in oauthlib.

* Discovery at ``/.well-known/openid-configuration/`` (with the slash; the
  address without it is redirected there), naming the issuer, endpoints and
  keys. The issuer is the site *with a trailing slash*, as DOT derives it from
  the discovery address (``issuer``: None; set it to another form, as DOT's
  OIDC_ISS_ENDPOINT would, and the document and ID tokens follow).
* ``/user/oauth/authorize/`` knows its clients and their redirect URIs (an
  unknown one gets an error page, never a redirect), requires PKCE
  (``invalid_request`` "Code challenge required." without a challenge) and
  passes ``state`` through; it logs in ``user`` (the member "logged in at the
  website") and either approves at once or, with ``auto_approve = False``,
  shows an Allow/Deny page; denying redirects with ``error=access_denied``;
* ``/user/oauth/token/`` exchanges a code within ``code_ttl_s`` (60 s), for
  the same client and redirect URI, only with the matching
  ``code_verifier``; a refused exchange leaves the code unused, a good one uses
  it up; it refreshes with rotation: the old access and refresh tokens are
  revoked; refused requests get 400 ``{"error": "invalid_grant"}``. For a
  client whose ``algorithm`` is "" (DOT's "No OIDC support") an exchange of a
  code with the ``openid`` scope crashes: HTTP 500.
* ID tokens are RS256 JWTs with ``iss``, ``aud``, ``sub``, ``nonce``,
  ``iat``, ``exp``, ``auth_time``, ``jti`` and a ``kid`` found in the JWKS
  (``id_token_issuer`` forges another ``iss``);
* ``/user/oauth/info/`` answers ``{"sub": …}`` for a live access token, 401
  ``invalid_token`` otherwise.

With ``resource`` set to a ``MemberAwareConcrexit``, access tokens are
accepted by that fake API while they live, with the scopes they were granted,
and each carries the albums its member may open.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_concrexit import FakeConcrexit, LoopbackServer, ServedOnLoopback, _Album, _json

_Response = tuple[int, dict[str, str], bytes]  # status, headers, body


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    sub: str
    scope: str
    nonce: str | None
    issued_at: float
    used: bool = False


@dataclass
class _Grant:
    """An access token and its refresh token, as issued together."""

    client_id: str
    sub: str
    scope: str
    access_token: str
    refresh_token: str
    expires_at: float
    revoked: bool = False


@dataclass
class FakeClient:
    client_id: str
    redirect_uris: set[str]
    secret: str = ""  # empty: a public client
    # The application's OIDC signing algorithm; "" is DOT's NO_ALGORITHM, "No OIDC support"
    # (oauth2_provider/models.py:91-97, the default of Application.algorithm at models.py:134).
    algorithm: str = "RS256"


@dataclass
class _State:
    codes: dict[str, _Code] = field(default_factory=dict)
    grants: list[_Grant] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: LoopbackServer

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.fake._respond(
            self.command, self.path, dict(self.headers.items()), body
        )
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per test run (making one takes a while); kid differs per provider."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeOIDC(ServedOnLoopback):
    """The provider. Use as a context manager or call start()/stop()."""

    handler = _Handler

    def __init__(self, resource: MemberAwareConcrexit | None = None) -> None:
        self.resource = resource
        self.clients: dict[str, FakeClient] = {}
        self.user: str = "1"  # the member logged in at the website
        self.auto_approve = True
        self.code_ttl_s: float = 60.0
        self.token_ttl_s: int = 36000  # concrexit: 10 hours
        self.token_delay_s: float = 0.0  # slows the token endpoint (overlapping renewals)
        self.clock_offset_s: float = 0.0
        self.kid = secrets.token_hex(4)
        self.issuer: str | None = None  # the discovery document's and ID tokens' issuer; None: DOT's
        self.id_token_issuer: str | None = None  # forge the ID tokens' `iss` (None: the issuer)
        self.discovery = True  # False: the site serves no discovery document (404)
        # Where the OAuth views are mounted: concrexit's /user/oauth/ (website/thaliawebsite/urls.py:96-97);
        # DOT's own docs mount them at /o/. Discovery names whatever is set.
        self.oauth_path = "/user/oauth/"
        self.requests: list[tuple[str, str]] = []
        self._key = _signing_key()
        self._state = _State()
        self._grant_types: list[str] = []
        self._lock = threading.RLock()

    # -- set-up and inspection ----------------------------------------------

    def add_client(
        self, client_id: str, redirect_uris: set[str], secret: str = "", algorithm: str = "RS256"
    ) -> FakeClient:
        client = FakeClient(client_id, set(redirect_uris), secret, algorithm)
        with self._lock:
            self.clients[client_id] = client
        return client

    def calls(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and urlsplit(p).path == path)

    def token_requests(self, grant_type: str) -> int:
        with self._lock:
            return self._grant_types.count(grant_type)

    def live_access_tokens(self) -> list[str]:
        with self._lock:
            return [
                g.access_token for g in self._state.grants if not g.revoked and g.expires_at > self._now()
            ]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now (refresh tokens stay valid)."""
        with self._lock:
            for grant in self._state.grants:
                grant.expires_at = self._now() - 1
                if self.resource is not None:
                    self.resource.forget_token(grant.access_token)

    def _now(self) -> float:
        return time.time() + self.clock_offset_s

    @property
    def issuer_url(self) -> str:
        """The issuer the site announces and signs into ID tokens.

        DOT takes OIDC_ISS_ENDPOINT when set (oauth2_provider/settings.py:288-289), else the absolute
        discovery address minus "/.well-known/openid-configuration" (settings.py:299-300). concrexit
        routes discovery with a trailing slash (website/thaliawebsite/urls.py:124-128), so what is left
        ends in a slash: "https://thalia.nu/".
        """
        return self.issuer if self.issuer is not None else f"{self.base_url}/"

    # -- HTTP --------------------------------------------------------------

    def _respond(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        with self._lock:
            self.requests.append((method, raw_path))
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if url.path == "/.well-known/openid-configuration" and method == "GET":
            # Django's CommonMiddleware (website/thaliawebsite/settings.py:651) appends the slash
            # of the only route there is (website/thaliawebsite/urls.py:124-128).
            return 301, {"Location": f"{url.path}/"}, b""
        if url.path == "/.well-known/openid-configuration/" and method == "GET" and self.discovery:
            return self._discovery()
        oauth = self.oauth_path
        if url.path == f"{oauth}keys/" and method == "GET":
            return _json_response(200, {"keys": [self._jwk()]})
        if url.path == f"{oauth}authorize/":
            return self._authorize(query if method == "GET" else form, decided=method == "POST")
        if url.path == f"{oauth}token/" and method == "POST":
            return self._token(form, headers)
        if url.path == f"{oauth}info/" and method == "GET":
            return self._userinfo(headers.get("Authorization", ""))
        return _page(404, "Not found")

    def _discovery(self) -> _Response:
        """DOT's ConnectDiscoveryInfoView (oauth2_provider/views/oidc.py:49-107).

        Without OIDC_ISS_ENDPOINT the endpoints are this site's own absolute URLs (oidc.py:52-59); with
        it, its scheme and host plus the same paths (oidc.py:64-72). concrexit routes them under
        /user/oauth/ (website/thaliawebsite/urls.py:96-122).
        """
        issuer = self.issuer_url
        base = self.base_url
        if self.issuer is not None:
            parts = urlsplit(self.issuer)
            base = f"{parts.scheme}://{parts.netloc}"
        return _json_response(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{base}{self.oauth_path}authorize/",
                "token_endpoint": f"{base}{self.oauth_path}token/",
                "userinfo_endpoint": f"{base}{self.oauth_path}info/",
                "jwks_uri": f"{base}{self.oauth_path}keys/",
                # concrexit's OAUTH2_PROVIDER["SCOPES"] (website/thaliawebsite/settings.py:807-835), abridged.
                "scopes_supported": ["openid", "read", "write", "events:read", "members:read", "photos:read"],
                # DOT's defaults (oauth2_provider/settings.py:78-91).
                "response_types_supported": [
                    "code",
                    "token",
                    "id_token",
                    "id_token token",
                    "code token",
                    "code id_token",
                    "code id_token token",
                ],
                "subject_types_supported": ["public"],
                # An RSA key is set, so RS256 comes first (oidc.py:76-78).
                "id_token_signing_alg_values_supported": ["RS256", "HS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                # AbstractGrant.CODE_CHALLENGE_METHODS (oauth2_provider/models.py:304).
                "code_challenge_methods_supported": ["plain", "S256"],
                # OAuth2Validator.get_discovery_claims (oauth2_validators.py:808-812); concrexit adds none.
                "claims_supported": ["sub"],
            },
        )

    def _jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def _authorize(self, params: dict[str, str], *, decided: bool) -> _Response:
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            return _page(400, "Invalid client_id or redirect_uri")  # never redirect to an unknown address
        state = params.get("state")

        def back(**values: str) -> _Response:
            if state is not None:
                values["state"] = state
            return 302, {"Location": f"{redirect_uri}?{urlencode(values)}"}, b""

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        # PKCE_REQUIRED defaults to True (oauth2_provider/settings.py:108); oauthlib then refuses an
        # authorization request without a challenge (oauthlib/oauth2/rfc6749/grant_types/
        # authorization_code.py:403-404) with MissingCodeChallengeError (rfc6749/errors.py:199-208).
        if not params.get("code_challenge"):
            return back(error="invalid_request", error_description="Code challenge required.")
        if params.get("code_challenge_method", "plain") not in ("plain", "S256"):
            return back(error="invalid_request", error_description="Transform algorithm not supported.")
        if not self.auto_approve and not decided:
            return self._consent_page(params)
        if decided and params.get("allow") != "yes":
            return back(error="access_denied")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._state.codes[code] = _Code(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                method=params.get("code_challenge_method", "plain"),  # oauthlib's default (…:410-411)
                sub=self.user,
                scope=params.get("scope", ""),
                nonce=params.get("nonce"),
                issued_at=self._now(),
            )
        return back(code=code)

    def _consent_page(self, params: dict[str, str]) -> _Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in params.get("scope", "").split())
        text = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Authorize</title></head>"
            "<body style='font-family:sans-serif;max-width:32rem;margin:2rem auto'>"
            f"<h1>Authorize {html.escape(params['client_id'])}?</h1>"
            f"<p>Logged in as member {html.escape(self.user)}. The application asks for:</p><ul>{scopes}</ul>"
            f'<form method="post" action="{self.oauth_path}authorize/">{hidden}'
            '<button name="allow" value="yes">Allow</button> <button name="allow" value="no">Deny</button>'
            "</form></body></html>"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, text.encode()

    def _client_of(self, form: dict[str, str], headers: dict[str, str]) -> FakeClient | None:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        authorization = headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        client = self.clients.get(client_id)
        if client is None or (client.secret and not secrets.compare_digest(client.secret, secret)):
            return None
        return client

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> _Response:
        if self.token_delay_s:
            time.sleep(self.token_delay_s)
        with self._lock:
            self._grant_types.append(form.get("grant_type", ""))
            client = self._client_of(form, headers)
            if client is None:
                return _json_response(401, {"error": "invalid_client"})
            if form.get("grant_type") == "authorization_code":
                return self._exchange(client, form)
            if form.get("grant_type") == "refresh_token":
                return self._refresh(client, form)
            return _json_response(400, {"error": "unsupported_grant_type"})

    def _exchange(self, client: FakeClient, form: dict[str, str]) -> _Response:
        code = self._state.codes.get(form.get("code", ""))
        if (
            code is None
            or code.used
            # AUTHORIZATION_CODE_EXPIRE_SECONDS: 60 (oauth2_provider/settings.py:52).
            or self._now() - code.issued_at > self.code_ttl_s
            or code.client_id != client.client_id
            or code.redirect_uri != form.get("redirect_uri")
        ):
            # oauthlib/oauth2/rfc6749/grant_types/authorization_code.py:483-487.
            return _json_response(400, {"error": "invalid_grant"})
        verifier = form.get("code_verifier")
        if verifier is None:  # authorization_code.py:493-494, errors.py:211-216
            return _json_response(
                400, {"error": "invalid_request", "error_description": "Code verifier required."}
            )
        expected = s256(verifier) if code.method == "S256" else verifier
        if not secrets.compare_digest(expected, code.challenge):
            # authorization_code.py:506-510: refused before the code is used up (…:313), so the
            # right verifier still works within the code's minute.
            return _json_response(400, {"error": "invalid_grant"})
        if "openid" in code.scope.split() and not client.algorithm:
            # The ID token is signed with the application's key (oauth2_validators.py:861-873), and an
            # application with "No OIDC support" has none: jwk_key raises ImproperlyConfigured
            # (oauth2_provider/models.py:259-266), which nothing catches. The code is not used up: that
            # happens after the token modifiers (authorization_code.py:307-314).
            return 500, {"Content-Type": "text/html; charset=utf-8"}, b"<h1>Server Error (500)</h1>"
        code.used = True  # invalidate_authorization_code (authorization_code.py:313-314)
        answer = self._issue(client, code.sub, code.scope)
        if "openid" in code.scope.split():
            answer["id_token"] = self._id_token(client.client_id, code.sub, code.nonce)
        return _json_response(200, answer)

    def _refresh(self, client: FakeClient, form: dict[str, str]) -> _Response:
        old = next((g for g in self._state.grants if g.refresh_token == form.get("refresh_token")), None)
        if old is None or old.revoked or old.client_id != client.client_id:
            return _json_response(400, {"error": "invalid_grant"})
        # ROTATE_REFRESH_TOKEN (oauth2_provider/settings.py:57): a new pair, and the old refresh token is
        # revoked with its access token (oauth2_validators.py:613-628, models.py:498-516).
        old.revoked = True
        if self.resource is not None:
            self.resource.forget_token(old.access_token)
        return _json_response(200, self._issue(client, old.sub, old.scope))

    def _issue(self, client: FakeClient, sub: str, scope: str) -> dict[str, Any]:
        grant = _Grant(
            client_id=client.client_id,
            sub=sub,
            scope=scope,
            access_token=secrets.token_urlsafe(24),
            refresh_token=secrets.token_urlsafe(24),
            expires_at=self._now() + self.token_ttl_s,
        )
        self._state.grants.append(grant)
        if self.resource is not None:
            self.resource.accept_token(grant.access_token, sub, scope)
        return {
            "access_token": grant.access_token,
            "expires_in": self.token_ttl_s,
            "token_type": "Bearer",
            "scope": scope,
            "refresh_token": grant.refresh_token,
        }

    def _id_token(self, client_id: str, sub: str, nonce: str | None) -> str:
        now = int(self._now())
        # OAuth2Validator.get_id_token_dictionary (oauth2_validators.py:835-846): iss from the same
        # oidc_issuer() as discovery (…:850-851), exp after ID_TOKEN_EXPIRE_SECONDS (settings.py:54),
        # auth_time, jti; oauthlib adds aud, iat and nonce. sub is the user's id (…:795-797).
        claims: dict[str, Any] = {
            "iss": self.id_token_issuer if self.id_token_issuer is not None else self.issuer_url,
            "aud": client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 36000,
            "auth_time": now,
            "jti": secrets.token_hex(16),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def _userinfo(self, authorization: str) -> _Response:
        token = authorization[7:] if authorization.lower().startswith("bearer ") else ""
        with self._lock:
            grant = next((g for g in self._state.grants if g.access_token == token), None)
            if grant is None or grant.revoked or grant.expires_at <= self._now():
                # DOT's UserInfoView answers oauthlib's error (oauth2_backends.py:190-196): InvalidTokenError
                # (oauthlib/openid/connect/core/endpoints/userinfo.py:103-104), 401 invalid_token with a
                # Bearer challenge (oauthlib/oauth2/rfc6749/errors.py:330-341, 98-114).
                description = (
                    "The access token provided is expired, revoked, malformed, or invalid for other reasons."
                )
                status, headers, body = _json_response(
                    401, {"error": "invalid_token", "error_description": description}
                )
                headers["WWW-Authenticate"] = (
                    f'Bearer error="invalid_token", error_description="{description}"'
                )
                return status, headers, body
            return _json_response(200, {"sub": grant.sub})


def _json_response(status: int, payload: Any) -> _Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _page(status: int, text: str) -> _Response:
    return status, {"Content-Type": "text/html; charset=utf-8"}, f"<h1>{html.escape(text)}</h1>".encode()


class MemberAwareConcrexit(FakeConcrexit):
    """The fake photos API, also answering members' tokens from ``FakeOIDC``.

    Each member token sees the albums' ``accessible`` flag as the website
    computes it for that member: True only for the slugs in
    ``accessible_to[sub]`` (default: none); the album detail of any other
    album is 403. The fixed importer token (``token``) sees the flags as
    added with ``add_album``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.accessible_to: dict[str, set[str]] = {}
        self._member_tokens: dict[str, str] = {}  # access token -> sub
        self._current = threading.local()

    def accept_token(self, token: str, sub: str, scope: str) -> None:
        with self._lock:
            self.tokens.add(token)
            self.token_scopes[token] = frozenset(scope.split())
            self._member_tokens[token] = sub

    def forget_token(self, token: str) -> None:
        with self._lock:
            self.tokens.discard(token)

    def _respond(self, method: str, raw_path: str, authorization: str | None) -> tuple[int, str, bytes]:
        parts = (authorization or "").split()
        self._current.sub = self._member_tokens.get(parts[-1]) if len(parts) == 2 else None
        return super()._respond(method, raw_path, authorization)

    def _accessible(self, album: _Album) -> bool:
        sub = getattr(self._current, "sub", None)
        if sub is None:
            return album.accessible
        return album.slug in self.accessible_to.get(sub, set())

    def _album_json(self, album: _Album) -> dict[str, Any]:
        return {**super()._album_json(album), "accessible": self._accessible(album)}

    def _album_detail(self, slug: str) -> tuple[int, str, bytes]:
        album = self._albums.get(slug)
        if album is not None and not album.hidden and not self._accessible(album):
            # As for the fixed token: website/photos/api/v2/views.py:53-56.
            return _json(403, {"detail": "You do not have permission to perform this action."})
        return super()._album_detail(slug)
