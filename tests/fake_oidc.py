"""A real OpenID Connect provider on 127.0.0.1, laid out like concrexit's.

concrexit is django-oauth-toolkit with OIDC enabled: the authorization,
token, userinfo and key endpoints live under ``/user/oauth/`` and discovery
at ``/.well-known/openid-configuration/``. This server issues what the
"Log in with Thalia" flow and ``connect_thalia`` need, with the checks the
real provider makes:

* ``/user/oauth/authorize/`` knows its clients and their redirect URIs (an
  unknown one gets an error page, never a redirect), requires PKCE with
  ``S256`` and passes ``state`` through; it logs in ``user`` (the member
  "logged in at the website") and either approves at once or, with
  ``auto_approve = False``, shows an Allow/Deny page; denying redirects with
  ``error=access_denied``;
* ``/user/oauth/token/`` exchanges a code once, within ``code_ttl_s``, for the
  same client and redirect URI, only with the matching ``code_verifier``;
  it refreshes with rotation: the old access and refresh tokens are revoked;
  refused requests get 400 ``{"error": "invalid_grant"}``;
* ID tokens are RS256 JWTs with ``iss``, ``aud``, ``sub``, ``nonce``,
  ``iat``, ``exp`` and a ``kid`` found in the JWKS;
* ``/user/oauth/info/`` answers ``{"sub": …}`` for a live access token,
  403 otherwise (concrexit answers errors with 403).

With ``resource`` set to a ``MemberAwareConcrexit``, access tokens are
accepted by that fake API while they live, and each carries the albums its
member may open.
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
        self.issuer: str | None = None  # the ID tokens' `iss`; None: base_url
        self.requests: list[tuple[str, str]] = []
        self._key = _signing_key()
        self._state = _State()
        self._grant_types: list[str] = []
        self._lock = threading.RLock()

    # -- set-up and inspection ----------------------------------------------

    def add_client(self, client_id: str, redirect_uris: set[str], secret: str = "") -> FakeClient:
        client = FakeClient(client_id, set(redirect_uris), secret)
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

    # -- HTTP --------------------------------------------------------------

    def _respond(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        with self._lock:
            self.requests.append((method, raw_path))
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if url.path.rstrip("/") == "/.well-known/openid-configuration" and method == "GET":
            return self._discovery()
        if url.path == "/user/oauth/keys/" and method == "GET":
            return _json_response(200, {"keys": [self._jwk()]})
        if url.path == "/user/oauth/authorize/":
            return self._authorize(query if method == "GET" else form, decided=method == "POST")
        if url.path == "/user/oauth/token/" and method == "POST":
            return self._token(form, headers)
        if url.path == "/user/oauth/info/" and method == "GET":
            return self._userinfo(headers.get("Authorization", ""))
        return _page(404, "Not found")

    def _discovery(self) -> _Response:
        base = self.base_url
        return _json_response(
            200,
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/user/oauth/authorize/",
                "token_endpoint": f"{base}/user/oauth/token/",
                "userinfo_endpoint": f"{base}/user/oauth/info/",
                "jwks_uri": f"{base}/user/oauth/keys/",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile:read", "photos:read", "members:read", "events:read"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
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
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return back(error="invalid_request", error_description="Code challenge required.")
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
            f'<form method="post" action="/user/oauth/authorize/">{hidden}'
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
            or self._now() - code.issued_at > self.code_ttl_s
            or code.client_id != client.client_id
            or code.redirect_uri != form.get("redirect_uri")
        ):
            return _json_response(400, {"error": "invalid_grant"})
        code.used = True  # even when the verifier is wrong: a code is good for one try
        if s256(form.get("code_verifier", "")) != code.challenge:
            return _json_response(
                400, {"error": "invalid_grant", "error_description": "Code verifier fails."}
            )
        answer = self._issue(client, code.sub, code.scope)
        if "openid" in code.scope.split():
            answer["id_token"] = self._id_token(client.client_id, code.sub, code.nonce)
        return _json_response(200, answer)

    def _refresh(self, client: FakeClient, form: dict[str, str]) -> _Response:
        old = next((g for g in self._state.grants if g.refresh_token == form.get("refresh_token")), None)
        if old is None or old.revoked or old.client_id != client.client_id:
            return _json_response(400, {"error": "invalid_grant"})
        old.revoked = True  # rotation: the old access and refresh tokens stop working
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
            self.resource.accept_token(grant.access_token, sub)
        return {
            "access_token": grant.access_token,
            "expires_in": self.token_ttl_s,
            "token_type": "Bearer",
            "scope": scope,
            "refresh_token": grant.refresh_token,
        }

    def _id_token(self, client_id: str, sub: str, nonce: str | None) -> str:
        now = int(self._now())
        claims: dict[str, Any] = {
            "iss": self.issuer or self.base_url,
            "aud": client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 3600,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def _userinfo(self, authorization: str) -> _Response:
        token = authorization[7:] if authorization.lower().startswith("bearer ") else ""
        with self._lock:
            grant = next((g for g in self._state.grants if g.access_token == token), None)
            if grant is None or grant.revoked or grant.expires_at <= self._now():
                return _json_response(403, {"detail": "Authentication credentials were not provided."})
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

    def accept_token(self, token: str, sub: str) -> None:
        with self._lock:
            self.tokens.add(token)
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
            return _json(403, {"detail": "You do not have permission to perform this action."})
        return super()._album_detail(slug)
