"""Real identity providers on loopback for the SSO tests, and an HTTP client that fills their
forms as a person would.

- CAS: django-cas-server (PyPI) in a subprocess, with a throwaway Django settings module, a
  SQLite file, and an authentication class that knows a few people and their `externalId`.
  It serves /cas/serviceValidate and /cas/p3/serviceValidate, and sends back-channel
  logout requests to services whose pattern asks for single logout.
- OIDC: oidc-provider-mock (PyPI; Flask + authlib) on a werkzeug thread, behind
  `HostileNetwork`, an aiohttp proxy on loopback. The provider names itself after the Host it
  is reached by, so through the proxy the issuer is the proxy's address; the proxy records
  what crosses it and, when told, plays the attacker: rewrites the nonce of an authorization
  request, alters the ID token in the token response, or offers only `plain` PKCE.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from yarl import URL

CAS_USERS = {
    # username: (password, attributes)
    "prof.cas": ("mdp-prof-cas", {"externalId": "ACA-1001", "email": "prof@ent.invalid"}),
    "eleve.desactive": ("mdp-eleve-cas", {"externalId": "ACA-1002"}),
    "eleve.inconnu": ("mdp-inconnu-cas", {"externalId": "ACA-9999"}),
    # Open ENT NG's ExternalIdRegisteredService: <cas:user> is the AAF id, prefix stripped.
    "2397809": ("mdp-aaf-cas", {}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"provider exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


_CAS_SETTINGS = '''
import os
SECRET_KEY = "cas-test-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "cas_server"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": [
                  "django.template.context_processors.request",
                  "django.contrib.auth.context_processors.auth",
                  "django.contrib.messages.context_processors.messages"]}}]
ROOT_URLCONF = "cas_test_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ["CAS_TEST_DB"]}}
USE_TZ = True
STATIC_URL = "/static/"
CAS_AUTH_CLASS = "cas_test_auth.FixtureAuthUser"
CAS_NEW_VERSION_HTML_WARNING = False
CAS_NEW_VERSION_EMAIL_WARNING = False
CAS_SHOW_POWERED = False
CAS_SLO_TIMEOUT = 5
# No CDN: the login page must load with loopback only.
CAS_COMPONENT_URLS = {k: "/static/none" for k in (
    "bootstrap3_css", "bootstrap3_js", "html5shiv", "respond", "bootstrap4_css",
    "bootstrap4_js", "jquery")}
'''

_CAS_URLS = '''
from django.urls import include, path
urlpatterns = [path("cas/", include("cas_server.urls", namespace="cas_server"))]
'''

_CAS_AUTH = '''
import json, os
from cas_server.auth import AuthUser
USERS = json.loads(open(os.environ["CAS_TEST_USERS"]).read())

class FixtureAuthUser(AuthUser):
    """The people this test ENT knows, with their attributes (externalId…)."""
    def test_password(self, password):
        return self.username in USERS and USERS[self.username][0] == password
    def attributs(self):
        return dict(USERS[self.username][1]) if self.username in USERS else {}
'''

_CAS_SERVICE = '''
import django; django.setup()
from cas_server.models import ReplaceAttributName, ServicePattern
p = ServicePattern.objects.create(
    name="ENT temps réel", pattern=r"^http://127\\.0\\.0\\.1:\\d+/auth/cas/callback.*$",
    single_log_out=True)
ReplaceAttributName.objects.create(name="*", replace="", service_pattern=p)
'''


class CasServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.url = url  # the CAS base: {url}/login, {url}/serviceValidate…
        self.proc = proc
        self.log_path = log_path  # its access log: which requests reached it

    def validations(self) -> int:
        """How many ticket validations the CAS server has answered so far."""
        return self.log_path.read_text(errors="replace").count("serviceValidate?")


@contextmanager
def run_cas_server(workdir: Path) -> Iterator[CasServer]:
    """django-cas-server on a free loopback port, for as long as the context lasts."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cas_test_settings.py").write_text(_CAS_SETTINGS)
    (workdir / "cas_test_urls.py").write_text(_CAS_URLS)
    (workdir / "cas_test_auth.py").write_text(_CAS_AUTH)
    (workdir / "users.json").write_text(json.dumps(CAS_USERS))
    env = {**os.environ, "PYTHONPATH": str(workdir), "DJANGO_SETTINGS_MODULE":
           "cas_test_settings", "CAS_TEST_DB": str(workdir / "cas.sqlite3"),
           "CAS_TEST_USERS": str(workdir / "users.json")}
    run = {"env": env, "cwd": workdir, "check": True, "capture_output": True}
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], **run)
    subprocess.run([sys.executable, "-c", textwrap.dedent(_CAS_SERVICE)], **run)
    port = free_port()
    log = (workdir / "cas.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", "--noreload",
         f"127.0.0.1:{port}"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc)
        yield CasServer(f"http://127.0.0.1:{port}/cas", proc, workdir / "cas.log")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# --- OIDC ------------------------------------------------------------------------------------


@contextmanager
def run_oidc_provider() -> Iterator[str]:
    """oidc-provider-mock (nonce required) on a werkzeug thread; yields its base URL."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _b64json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _unb64json(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class HostileNetwork:
    """A loopback proxy in front of the provider: transparent until told to attack."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self.forge_nonce: str | None = None
        self.tamper_id_token: dict[str, Any] | None = None  # claims to overwrite
        self.only_plain_pkce = False
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path, params)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        self.forge_nonce = None
        self.tamper_id_token = None
        self.only_plain_pkce = False
        self.seen.clear()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._http:
            await self._http.close()
        if self._runner:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        query = dict(request.query)
        body = await request.read()
        form = dict(parse_qsl(body.decode())) if request.content_type.endswith(
            "x-www-form-urlencoded") else {}
        self.seen.append((request.method, request.path, {**query, **form}))
        if request.path == "/oauth2/authorize" and self.forge_nonce and "nonce" in query:
            query["nonce"] = self.forge_nonce
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding")}
        async with self._http.request(
                request.method, f"{self.upstream}{request.path}", params=query, data=body,
                headers=headers, allow_redirects=False) as up:
            payload = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in (
                "content-length", "transfer-encoding", "content-encoding", "connection")}
            status = up.status
        if request.path == "/.well-known/openid-configuration" and self.only_plain_pkce:
            meta = json.loads(payload)
            meta["code_challenge_methods_supported"] = ["plain"]
            payload = json.dumps(meta).encode()
        if request.path == "/oauth2/token" and self.tamper_id_token and status == 200:
            answer = json.loads(payload)
            head, claims, sig = answer["id_token"].split(".")
            answer["id_token"] = ".".join(
                (head, _unb64json({**_b64json(claims), **self.tamper_id_token}), sig))
            payload = json.dumps(answer).encode()
        return web.Response(body=payload, status=status, headers=out_headers)


# --- a person's browser, without the browser ---------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "fields": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1]["buttons"].append((a.get("name"), a.get("value")))


def forms_of(page: str) -> list[dict[str, Any]]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


async def submit_form(http: aiohttp.ClientSession, page_url: str, page: str,
                      values: dict[str, str], form_index: int = 0) -> aiohttp.ClientResponse:
    """Fill a page's form as a person would (hidden fields kept) and send it; the answer's
    redirect is not followed, so the caller sees where the provider sends the browser."""
    form = forms_of(page)[form_index]
    data = {**form["fields"], **values}
    target = urljoin(page_url, form["action"]) if form["action"] else page_url
    return await http.request(form["method"].upper(), URL(target, encoded=True), data=data,
                              allow_redirects=False, headers={"Referer": page_url})


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))
