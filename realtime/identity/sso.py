"""Signing in through the ENT: CAS and OpenID Connect routes (docs/identity.md).

`/auth/cas/login` and `/auth/oidc/login` send the browser to the ENT; the callbacks check
what comes back server-side, find the account by the ENT's id, and open the same session
(cookie and token) as the personal-code login, then go to `next` (a path of this site only).
Every refusal is a French page that says what happened and opens no session.

A CAS back-channel logout (the CAS server POSTs a SAML LogoutRequest naming the service
ticket) ends the session that ticket opened, and our logout can end the CAS session too.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec
import socketio
from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from realtime import keys
from realtime.api import COOKIE_NAME, client_address
from realtime.db import Database
from realtime.errors import AppError
from realtime.identity import cas, store
from realtime.identity.model import User
from realtime.identity.oidc import OidcClient, OidcRefusal
from realtime.identity.outbound import ProviderUnavailable, client_session, fetch
from realtime.identity.saml import SamlServiceProvider
from realtime.identity.saml import add_routes as saml_routes
from realtime.identity.service import DISABLED_MESSAGE, REPLAYED_MESSAGE, sso_index_hash
from realtime.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from realtime.settings import Settings

log = logging.getLogger(__name__)

FLOW_COOKIE = "ent_sso_flow"  # an OIDC sign-in in progress
NEXT_COOKIE = "ent_sso_next"  # where a CAS sign-in lands
FLOW_MAX_AGE_S = 600  # a sign-in at the ENT's form must finish within ten minutes
MAX_NEXT_LEN = 1024
MAX_ID_LEN = 256
MAX_CODE_LEN = 4096
MAX_LOGOUT_REQUEST = 16 * 1024
BUTTON_LABEL = "Se connecter avec l'ENT"
SAML_LABEL = "Se connecter avec ÉduConnect"  # SAML here means ÉduConnect through a federation


class SsoState:
    """What the SSO routes share: the outbound HTTP session, the OIDC client and its caches,
    the per-address limiter for failed sign-ins, and the signer of the flow cookie."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession,
                 limiter: RateLimiter, secret: str) -> None:
        self.settings = settings
        self.http = http
        self.limiter = limiter
        self.flow = URLSafeTimedSerializer(secret, salt="ent-sso-flow")
        self.oidc = (OidcClient(http, settings.oidc_issuer, settings.oidc_client_id,
                                settings.oidc_client_secret, settings.oidc_scopes)
                     if oidc_enabled(settings) else None)
        self.saml = SamlServiceProvider(settings) if saml_enabled(settings) else None


def cas_enabled(settings: Settings) -> bool:
    return bool(settings.cas_url)


def oidc_enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def saml_enabled(settings: Settings) -> bool:
    return settings.saml_idp_metadata is not None


def public_config(settings: Settings) -> dict[str, Any]:
    """What the login page needs: which buttons to show, which roles the code form refuses."""
    providers = []
    if cas_enabled(settings):
        providers.append({"id": "cas", "url": "/auth/cas/login", "label": BUTTON_LABEL})
    if oidc_enabled(settings):
        label = BUTTON_LABEL if not providers else f"{BUTTON_LABEL} (OpenID Connect)"
        providers.append({"id": "oidc", "url": "/auth/oidc/login", "label": label})
    if saml_enabled(settings):
        providers.append({"id": "saml", "url": "/auth/saml/login", "label": SAML_LABEL})
    return {"providers": providers, "code_login_off": list(settings.code_login_off)}


# --- pieces shared with the personal-code routes ---------------------------------------------


def set_session_cookie(response: web.StreamResponse, token: str, settings: Settings) -> None:
    response.set_cookie(COOKIE_NAME, token, max_age=settings.token_ttl_s, path="/",
                        httponly=True, samesite="Lax", secure=settings.cookie_secure)


def base_url(request: web.Request) -> str:
    """This service's address as the browser sees it (REALTIME_PUBLIC_URL behind a proxy)."""
    configured = request.app[keys.SETTINGS].public_url
    return configured or f"{request.scheme}://{request.host}"


async def logout_redirect(request: web.Request, provider: str | None) -> str | None:
    """Where the browser goes after our logout: the ENT's own logout, when the session came
    from it and single logout is on (a shared TBI computer must not stay signed in at the
    ENT). CAS: `{CAS}/logout?service=`; OIDC: the provider's `end_session_endpoint`
    (RP-initiated logout) when its discovery announces one."""
    s = request.app[keys.SETTINGS]
    back = f"{base_url(request)}/"
    if provider == "cas" and s.cas_url and s.cas_single_logout:
        return cas.logout_url(s.cas_url, back)
    sso = request.app.get(keys.SSO)
    if provider == "oidc" and s.oidc_single_logout and sso is not None and sso.oidc:
        try:
            meta = await sso.oidc.metadata()
        except ProviderUnavailable:
            return None  # our session is over all the same
        end = meta.get("end_session_endpoint")
        if isinstance(end, str) and end:
            query = urlencode({"client_id": sso.oidc.client_id,
                               "post_logout_redirect_uri": back})
            return f"{end}{'&' if '?' in end else '?'}{query}"
    return None


def safe_next(raw: str | None) -> str:
    """`next` when it is a path of this site, else `/`: never a way to send someone, freshly
    signed in, to another site (`//evil`, `/\\evil`, `https://evil`, control characters)."""
    if not raw or len(raw) > MAX_NEXT_LEN or not raw.startswith("/"):
        return "/"
    if raw.startswith("//") or "\\" in raw or any(c.isspace() or not c.isprintable()
                                                  for c in raw):
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/"
    return raw


async def find_account(db: Database, settings: Settings, ident: str) -> User | None:
    """The account the ENT's id names: by external id (with the academy prefix) or login,
    in the order REALTIME_SSO_MATCH gives."""
    ident = ident.strip()
    if not ident or len(ident) > MAX_ID_LEN:
        return None
    for how in settings.sso_match.split(","):
        if how == "external_id":
            prefix = settings.sso_id_prefix
            user = await store.user_by_external_id(
                db, ident if ident.startswith(prefix) else prefix + ident)
        else:
            found = await store.user_by_login(db, ident)
            user = found[0] if found else None
        if user is not None:
            return user
    return None


# --- the French pages of refusal -------------------------------------------------------------

_REFUSALS: dict[str, tuple[int, str, str]] = {
    "unknown": (403, "Compte introuvable",
                "Votre compte ENT n'est relié à aucun compte de ce service. Si vous devriez y"
                " avoir accès, demandez au secrétariat de votre établissement de vérifier"
                " l'annuaire."),
    "disabled": (403, "Compte désactivé", DISABLED_MESSAGE),
    "bad_ticket": (403, "Ticket de connexion refusé",
                   "L'ENT n'a pas reconnu ce ticket de connexion : il est invalide, expiré ou a"
                   " déjà servi. Aucune session n'a été ouverte. Reconnectez-vous depuis"
                   " l'ENT."),
    "replayed": (403, "Ticket déjà utilisé", REPLAYED_MESSAGE),
    "no_identifier": (502, "Identifiant manquant",
                      "L'ENT n'a pas transmis l'identifiant attendu pour ce service. Son"
                      " administrateur doit le publier (voir la documentation)."),
    "unavailable": (502, "ENT injoignable",
                    "Le service de connexion de l'ENT ne répond pas. Réessayez dans quelques"
                    " minutes."),
    "bad_state": (400, "Demande de connexion expirée",
                  "Cette demande de connexion a expiré ou n'a pas été lancée depuis ce"
                  " navigateur. Aucune session n'a été ouverte. Recommencez depuis la page de"
                  " connexion."),
    "bad_token": (403, "Réponse de l'ENT refusée",
                  "La réponse du fournisseur d'identité n'a pas pu être vérifiée (signature,"
                  " émetteur, destinataire ou validité). Aucune session n'a été ouverte."),
    "bad_nonce": (403, "Réponse de l'ENT refusée",
                  "La réponse du fournisseur d'identité ne correspond pas à cette demande de"
                  " connexion (elle a pu être rejouée). Aucune session n'a été ouverte."),
    "denied": (403, "Connexion annulée",
               "La connexion par l'ENT a été annulée ou refusée. Aucune session n'a été"
               " ouverte."),
    "rate_limited": (429, "Trop de tentatives",
                     "Trop de connexions refusées depuis cette adresse. Réessayez dans quelques"
                     " minutes."),
}


def refusal_page(reason: str, *, provider: str, detail: str | None = None) -> web.Response:
    status, title, message = _REFUSALS[reason]
    extra = (f"<p>Identifiant transmis par l'ENT : <strong>{html.escape(detail)}</strong></p>"
             if detail else "")
    retry = (f'<p><a class="btn btn-primary btn-block" href="/auth/{provider}/login">'
             f"Réessayer avec l'ENT</a></p>"
             if reason in ("bad_ticket", "bad_state", "bad_nonce", "unavailable", "denied")
             else "")
    body = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – ENT des collèges</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main id="contenu" class="login-page"><div class="login-card">
<p class="brand">ENT des collèges</p>
<h1>{html.escape(title)}</h1>
<div class="alert" role="alert"><p>{html.escape(message)}</p>{extra}</div>
{retry}<p><a class="btn btn-block" href="/#/login">Revenir à la page de connexion</a></p>
</div></main></body></html>"""
    response = web.Response(text=body, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def refuse(request: web.Request, reason: str, provider: str, *, counts: bool,
                  detail: str | None = None, log_detail: str = "") -> web.Response:
    """A refusal page; `counts`: a failure that may be an attack (forged or replayed ticket,
    wrong state) counts against the address, so a flood of them costs nothing after a while."""
    if counts:
        await request.app[keys.SSO].limiter.hit(f"addr:{client_address(request)}")
    log.info("sso sign-in refused", extra={"provider": provider, "reason": reason,
                                           "detail": log_detail or detail or ""})
    response = refusal_page(reason, provider=provider, detail=detail)
    response.del_cookie(FLOW_COOKIE if provider == "oidc" else NEXT_COOKIE, path="/auth/")
    return response


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


async def sign_in(request: web.Request, user: User, provider: str, index: str,
                   next_path: str) -> web.Response:
    """The session, once the ENT vouched for `user`; the same refusals on every path."""
    if user.disabled:
        return await refuse(request, "disabled", provider, counts=False,
                             log_detail=f"user {user.id}")
    try:
        token = await request.app[keys.IDENTITY].sso_login(user, provider, index)
    except AppError as err:
        reason = "replayed" if err.message == REPLAYED_MESSAGE else "disabled"
        return await refuse(request, reason, provider, counts=reason == "replayed",
                             log_detail=f"user {user.id}")
    log.info("sso sign-in", extra={"provider": provider, "user_id": user.id})
    response = redirect(next_path)
    set_session_cookie(response, token, request.app[keys.SETTINGS])
    response.del_cookie(FLOW_COOKIE if provider == "oidc" else NEXT_COOKIE, path="/auth/")
    return response


async def limited(request: web.Request) -> bool:
    return await request.app[keys.SSO].limiter.blocked(f"addr:{client_address(request)}")


# --- CAS -------------------------------------------------------------------------------------


def _cas_service(request: web.Request) -> str:
    """The service URL the ticket was issued for: our callback with its query as the browser
    sent it, less the `ticket` CAS appended (the CAS server compares them exactly)."""
    kept = [p for p in request.query_string.split("&") if p and not p.startswith("ticket=")]
    query = "&".join(kept)
    return f"{base_url(request)}{request.path}" + (f"?{query}" if query else "")


async def cas_login(request: web.Request) -> web.Response:
    """To the CAS login. The service URL carries no query: CAS servers do not all append the
    ticket to it byte for byte, and validation compares it exactly. `next` waits in a signed
    cookie of this browser instead."""
    s = request.app[keys.SETTINGS]
    assert s.cas_url
    next_path = safe_next(request.query.get("next"))
    response = redirect(cas.login_url(s.cas_url, f"{base_url(request)}/auth/cas/callback"))
    response.set_cookie(NEXT_COOKIE, request.app[keys.SSO].flow.dumps({"next": next_path}),
                        max_age=FLOW_MAX_AGE_S, path="/auth/", httponly=True, samesite="Lax",
                        secure=s.cookie_secure)
    return response


def _cas_next(request: web.Request) -> str:
    """Where to land: the `next` this browser asked for, or one in the callback's query (a
    link from the ENT's portal), else the home page."""
    raw = request.cookies.get(NEXT_COOKIE)
    if raw and len(raw) <= 2048:
        try:
            data = request.app[keys.SSO].flow.loads(raw, max_age=FLOW_MAX_AGE_S)
        except BadSignature:
            data = None
        if isinstance(data, dict) and isinstance(data.get("next"), str):
            return safe_next(data["next"])
    return safe_next(request.query.get("next"))


async def cas_callback(request: web.Request) -> web.Response:
    s = request.app[keys.SETTINGS]
    assert s.cas_url
    if await limited(request):
        return await refuse(request, "rate_limited", "cas", counts=False)
    ticket = request.query.get("ticket", "")
    if not cas.ticket_looks_valid(ticket):
        return await refuse(request, "bad_ticket", "cas", counts=True, log_detail="malformed")
    db = request.app[keys.DB]
    if await store.sso_index_used(db, "cas", sso_index_hash(ticket)):
        return await refuse(request, "replayed", "cas", counts=True)
    url = cas.validate_url(s.cas_url, s.cas_validate, _cas_service(request), ticket)
    try:
        status, body = await fetch(request.app[keys.SSO].http, "GET", url, cas.MAX_RESPONSE_BYTES)
        if status != 200:
            raise ProviderUnavailable(f"CAS validation: HTTP {status}")
        success = cas.parse_validation(body)
    except ProviderUnavailable as exc:
        log.warning("CAS server unavailable", extra={"error": str(exc)})
        return await refuse(request, "unavailable", "cas", counts=False)
    except cas.CasRefusal as exc:
        if exc.code == "INVALID_RESPONSE":  # not a CAS answer: an error page from a proxy…
            log.warning("CAS server answered garbage", extra={"error": str(exc)})
            return await refuse(request, "unavailable", "cas", counts=False)
        return await refuse(request, "bad_ticket", "cas", counts=True, log_detail=str(exc))
    ident = success.identifier(s.cas_id)
    if ident is None:
        return await refuse(request, "no_identifier", "cas", counts=False,
                             log_detail=f"no {s.cas_id} for {success.user}")
    user = await find_account(db, s, ident)
    if user is None:
        return await refuse(request, "unknown", "cas", counts=False, detail=ident[:MAX_ID_LEN])
    return await sign_in(request, user, "cas", ticket, _cas_next(request))


async def cas_back_channel_logout(request: web.Request) -> web.Response:
    """The CAS server says the person left the ENT: end the session its ticket opened.

    Knowing the ticket is the proof (CAS back-channel requests are not signed); a ticket is
    single-use, short-lived and travelled only between the browser, the CAS and us."""
    if request.content_length is not None and request.content_length > MAX_LOGOUT_REQUEST:
        raise AppError("too_large")
    form = await request.post()
    raw = form.get("logoutRequest")
    if not isinstance(raw, str) or len(raw) > MAX_LOGOUT_REQUEST:
        raise AppError("invalid", "Requête de déconnexion CAS attendue (logoutRequest).")
    try:
        index = cas.parse_logout_request(raw)
    except cas.CasRefusal as exc:
        raise AppError("invalid", "Requête de déconnexion CAS illisible.") from exc
    identity = request.app[keys.IDENTITY]
    ended = 0
    for session_id in await store.sessions_by_sso_index(
            request.app[keys.DB], "cas", sso_index_hash(index)):
        await identity.logout_session(session_id)
        ended += 1
    log.info("CAS back-channel logout", extra={"sessions": ended})
    return web.Response(text="ok")


# --- OpenID Connect --------------------------------------------------------------------------


class Flow(msgspec.Struct, frozen=True):
    """One sign-in in progress, kept in a signed cookie of this browser (so any node of the
    ENT can finish it): what the callback must find again."""

    state: str
    nonce: str
    verifier: str
    next: str


def _redirect_uri(request: web.Request) -> str:
    return f"{base_url(request)}/auth/oidc/callback"


async def oidc_login(request: web.Request) -> web.Response:
    sso = request.app[keys.SSO]
    assert sso.oidc is not None
    flow = Flow(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                verifier=secrets.token_urlsafe(48), next=safe_next(request.query.get("next")))
    try:
        auth = await sso.oidc.authorization_request(_redirect_uri(request), flow.state,
                                                    flow.nonce, flow.verifier)
    except ProviderUnavailable as exc:
        log.warning("OIDC provider unavailable", extra={"error": str(exc)})
        return refusal_page("unavailable", provider="oidc")
    response = redirect(auth.url)
    s = request.app[keys.SETTINGS]
    response.set_cookie(FLOW_COOKIE, sso.flow.dumps(msgspec.to_builtins(flow)),
                        max_age=FLOW_MAX_AGE_S, path="/auth/", httponly=True, samesite="Lax",
                        secure=s.cookie_secure)
    return response


def _flow_of(request: web.Request) -> Flow | None:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw or len(raw) > 2048:
        return None
    try:
        data = request.app[keys.SSO].flow.loads(raw, max_age=FLOW_MAX_AGE_S)
        return msgspec.convert(data, Flow)
    except (BadSignature, msgspec.ValidationError):
        return None


async def oidc_callback(request: web.Request) -> web.Response:
    sso = request.app[keys.SSO]
    s = request.app[keys.SETTINGS]
    assert sso.oidc is not None
    if await limited(request):
        return await refuse(request, "rate_limited", "oidc", counts=False)
    flow = _flow_of(request)
    state = request.query.get("state", "")
    if flow is not None and "error" in request.query and not state:
        # The person said no (some providers drop `state` from error answers): nothing is
        # opened either way, so say what happened rather than « expired ».
        return await refuse(request, "denied", "oidc", counts=False,
                             log_detail=request.query.get("error", "")[:100])
    if flow is None or not hmac.compare_digest(state.encode(), flow.state.encode()):
        return await refuse(request, "bad_state", "oidc", counts=True)
    if "error" in request.query:
        return await refuse(request, "denied", "oidc", counts=False,
                             log_detail=request.query.get("error", "")[:100])
    code = request.query.get("code", "")
    if not code or len(code) > MAX_CODE_LEN:
        return await refuse(request, "bad_token", "oidc", counts=True, log_detail="no code")
    db = request.app[keys.DB]
    if await store.sso_index_used(db, "oidc", sso_index_hash(flow.nonce)):
        return await refuse(request, "replayed", "oidc", counts=True)
    try:
        tokens = await sso.oidc.exchange(code, _redirect_uri(request), flow.verifier)
        claims = await sso.oidc.verify_id_token(tokens["id_token"], flow.nonce)
        ident = claims.get(s.oidc_id_claim)
        if ident is None and isinstance(tokens.get("access_token"), str):
            info = await sso.oidc.userinfo(tokens["access_token"])
            if info.get("sub") == claims["sub"]:  # OIDC Core §5.3.2: else not this person
                ident = info.get(s.oidc_id_claim)
    except ProviderUnavailable as exc:
        log.warning("OIDC provider unavailable", extra={"error": str(exc)})
        return await refuse(request, "unavailable", "oidc", counts=False)
    except OidcRefusal as exc:
        reason = "bad_nonce" if exc.reason == "bad_nonce" else (
            "bad_ticket" if exc.reason == "provider_error" else "bad_token")
        return await refuse(request, reason, "oidc", counts=True, log_detail=str(exc))
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        return await refuse(request, "no_identifier", "oidc", counts=False,
                             log_detail=f"no claim {s.oidc_id_claim}")
    ident = str(ident)
    user = await find_account(db, s, ident)
    if user is None:
        return await refuse(request, "unknown", "oidc", counts=False, detail=ident[:MAX_ID_LEN])
    return await sign_in(request, user, "oidc", flow.nonce, flow.next)


# --- wiring ----------------------------------------------------------------------------------


async def _sso_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the database and Redis (the limiter shares Redis with the other workers)."""
    s = app[keys.SETTINGS]
    redis = app[keys.REDIS]
    limiter: RateLimiter = (
        RedisRateLimiter(redis, f"{s.redis_prefix}:sso-addr", s.login_max_failures_per_ip,
                         s.login_window_s)
        if redis is not None else MemoryRateLimiter(s.login_max_failures_per_ip,
                                                    s.login_window_s))
    http = client_session()
    # The secret every node signs with (realtime/shared.py): a flow begun on one node may
    # come back to another.
    app[keys.SSO] = SsoState(s, http, limiter, app[keys.IDENTITY].signer.secret)
    yield
    await http.close()


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    s = app[keys.SETTINGS]
    if not (cas_enabled(s) or oidc_enabled(s) or saml_enabled(s)):
        if s.code_login_off:
            log.warning("REALTIME_CODE_LOGIN_OFF without any SSO: those roles cannot sign in",
                        extra={"roles": list(s.code_login_off)})
        return
    app.cleanup_ctx.append(_sso_ctx)
    if cas_enabled(s):
        app.router.add_get("/auth/cas/login", cas_login)
        app.router.add_get("/auth/cas/callback", cas_callback)
        app.router.add_post("/auth/cas/callback", cas_back_channel_logout)
    if oidc_enabled(s):
        app.router.add_get("/auth/oidc/login", oidc_login)
        app.router.add_get("/auth/oidc/callback", oidc_callback)
    if saml_enabled(s):
        saml_routes(app)
