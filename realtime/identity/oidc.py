"""OpenID Connect as a relying party: discovery, the authorization-code flow with PKCE, and
the ID token checked against the provider's published keys (joserfc does the JOSE part).

What is checked, and why each matters:
- `state` (in the routes): the answer belongs to a sign-in this browser started;
- PKCE (S256, or `plain` where the provider offers only that): a code stolen on the way back
  is useless without the verifier, which never left this server;
- the ID token's signature against the JWKS, with an asymmetric algorithm the provider
  announces (never `none`, never an HMAC keyed by something public);
- `iss` is the configured issuer, `aud` names our client id (and `azp` too when there are
  several audiences), `exp`/`iat` are current, and `nonce` is the one this sign-in sent: a
  token issued for another sign-in cannot be replayed into this one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from realtime.identity.outbound import ProviderUnavailable, fetch

MAX_DOC_BYTES = 512 * 1024
METADATA_TTL_S = 3600.0
JWKS_REFETCH_MIN_S = 60.0  # an unknown `kid` refetches the keys, at most this often
LEEWAY_S = 60  # clock skew tolerated on exp / iat
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                   "ES256", "ES384", "ES512", "EdDSA")


class OidcRefusal(Exception):
    """The provider's answer cannot be trusted. `reason`: bad_token, bad_nonce or
    provider_error (the token endpoint refused the code)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class AuthRequest(msgspec.Struct, frozen=True):
    url: str
    challenge_method: str


def pkce_challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ProviderUnavailable(f"{what}: not JSON") from exc
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{what}: not a JSON object")
    return data


def _kid_of(token: str) -> str | None:
    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class OidcClient:
    def __init__(self, http: aiohttp.ClientSession, issuer: str, client_id: str,
                 client_secret: str | None, scopes: str) -> None:
        self.http = http
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes if "openid" in scopes.split() else f"openid {scopes}".strip()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, cached for an hour."""
        if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL_S:
            return self._metadata
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        status, body = await fetch(self.http, "GET", url, MAX_DOC_BYTES)
        if status != 200:
            raise ProviderUnavailable(f"discovery: HTTP {status}")
        meta = _json(body, "discovery")
        if meta.get("issuer") != self.issuer:  # OpenID Connect Discovery §4.3
            raise ProviderUnavailable(f"discovery names issuer {meta.get('issuer')!r}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(name), str):
                raise ProviderUnavailable(f"discovery lacks {name}")
        self._metadata, self._metadata_at = meta, time.monotonic()
        return meta

    async def authorization_request(self, redirect_uri: str, state: str, nonce: str,
                                    verifier: str) -> AuthRequest:
        meta = await self.metadata()
        offered = meta.get("code_challenge_methods_supported")
        method = ("plain" if isinstance(offered, list) and "S256" not in offered
                  and "plain" in offered else "S256")
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier, method),
            "code_challenge_method": method,
        }
        endpoint = meta["authorization_endpoint"]
        sep = "&" if "?" in endpoint else "?"
        return AuthRequest(url=f"{endpoint}{sep}{urlencode(params)}", challenge_method=method)

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer for this code (it holds `id_token`)."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": verifier}
        headers = {"Accept": "application/json"}
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self.client_secret is None:
            form["client_id"] = self.client_id  # a public client
        elif "client_secret_basic" in methods:
            # RFC 6749 §2.3.1: each part form-encoded before Basic (a secret may hold ':').
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        status, body = await fetch(self.http, "POST", meta["token_endpoint"], MAX_DOC_BYTES,
                                   data=form, headers=headers)
        if status >= 500:
            raise ProviderUnavailable(f"token endpoint: HTTP {status}")
        try:
            answer = _json(body, "token endpoint")
        except ProviderUnavailable as exc:
            raise OidcRefusal("provider_error", f"HTTP {status}") from exc
        if status != 200 or not isinstance(answer.get("id_token"), str):
            raise OidcRefusal("provider_error", f"HTTP {status} {answer.get('error')!r}")
        return answer

    async def _key_set(self, kid: str | None) -> KeySet:
        meta = await self.metadata()
        known = self._keys is not None and (
            kid is None or any(k.kid == kid for k in self._keys.keys))
        stale = time.monotonic() - self._keys_at >= JWKS_REFETCH_MIN_S
        if self._keys is None or (not known and stale):
            status, body = await fetch(self.http, "GET", meta["jwks_uri"], MAX_DOC_BYTES)
            if status != 200:
                raise ProviderUnavailable(f"jwks: HTTP {status}")
            try:
                self._keys = KeySet.import_key_set(_json(body, "jwks"))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderUnavailable(f"jwks: {exc}") from exc
            self._keys_at = time.monotonic()
        assert self._keys is not None
        return self._keys

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature and claims check out."""
        meta = await self.metadata()
        announced = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in announced if a in ASYMMETRIC_ALGS]
        if not algorithms:
            raise OidcRefusal("bad_token", f"no asymmetric algorithm among {announced}")
        keys = await self._key_set(_kid_of(id_token))
        try:
            token = jwt.decode(id_token, keys, algorithms=algorithms)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcRefusal("bad_token", f"{type(exc).__name__}: {exc}") from exc
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcRefusal("bad_token", f"{type(exc).__name__}: {exc}") from exc
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise OidcRefusal("bad_token", "several audiences and azp is not us")
        if claims.get("nonce") != nonce:
            raise OidcRefusal("bad_nonce", "nonce differs from this sign-in's")
        return claims

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        meta = await self.metadata()
        endpoint = meta.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        status, body = await fetch(self.http, "GET", endpoint, MAX_DOC_BYTES,
                                   headers={"Authorization": f"Bearer {access_token}",
                                            "Accept": "application/json"})
        if status != 200:
            raise ProviderUnavailable(f"userinfo: HTTP {status}")
        return _json(body, "userinfo")
