"""A real SAML 2.0 IdP on loopback for the tests: pysaml2's `Server` (the IdP half of the same
library, with xmlsec1 signing) behind a small aiohttp app with a login form, playing an
ÉduConnect-like federation: HTTP-Redirect AuthnRequests in, signed HTTP-POST Responses out."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from aiohttp import web

SAML_USERS = {
    # username: (password, NameID sent, attributes)
    "prof.saml": ("mdp-prof-saml", "ACA-1001", {"FrEduCtId": ["ACA-1001"]}),
    "eleve.saml.desactive": ("mdp-eleve-saml", "ACA-1002", {}),
    "inconnu.saml": ("mdp-inconnu-saml", "ACA-9999", {}),
}


def make_key_and_cert(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed RSA key pair, as a federation member would have."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class SamlIdp:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.key, self.cert = make_key_and_cert(folder, "idp")
        self.server: Any = None
        self._runner: web.AppRunner | None = None

    def _config(self, sp_metadata: Path | None) -> Any:
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT

        cfg: dict[str, Any] = {
            "entityid": f"{self.url}/metadata",
            "key_file": str(self.key),
            "cert_file": str(self.cert),
            "service": {"idp": {
                "name": "ÉduConnect (test)",
                "endpoints": {"single_sign_on_service": [
                    (f"{self.url}/sso/redirect", BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5},
                                       "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_URI}},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }},
        }
        if sp_metadata is not None:
            cfg["metadata"] = {"local": [str(sp_metadata)]}
        config = IdPConfig()
        config.load(cfg)
        return config

    def write_metadata(self) -> Path:
        from saml2.metadata import create_metadata_string

        path = self.folder / "idp-metadata.xml"
        path.write_bytes(create_metadata_string(None, self._config(None), valid=None))
        return path

    async def start(self, sp_metadata_xml: str) -> None:
        from saml2.server import Server

        sp_file = self.folder / "sp-metadata.xml"
        sp_file.write_text(sp_metadata_xml)
        self.server = Server(config=self._config(sp_file))
        app = web.Application()
        app.router.add_get("/sso/redirect", self._form)
        app.router.add_post("/sso/login", self._login)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _form(self, request: web.Request) -> web.Response:
        from saml2 import BINDING_HTTP_REDIRECT

        saml_request = request.query["SAMLRequest"]
        self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)  # well-formed?
        page = f"""<!doctype html><html lang="fr"><meta charset="utf-8">
<title>ÉduConnect (test)</title><h1>ÉduConnect (test)</h1>
<form method="post" action="/sso/login">
<input type="hidden" name="SAMLRequest" value="{html.escape(saml_request)}">
<input type="hidden" name="RelayState" value="{html.escape(request.query.get('RelayState', ''))}">
<label>Identifiant <input name="username"></label>
<label>Mot de passe <input name="password" type="password"></label>
<button type="submit">Se connecter</button></form></html>"""
        return web.Response(text=page, content_type="text/html")

    async def _login(self, request: web.Request) -> web.Response:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID

        form = await request.post()
        user = SAML_USERS.get(str(form["username"]))
        if user is None or user[0] != form["password"]:
            return web.Response(text="Identifiant ou mot de passe incorrect.", status=401)
        req = self.server.parse_authn_request(str(form["SAMLRequest"]), BINDING_HTTP_REDIRECT)
        message = req.message
        acs = message.assertion_consumer_service_url
        response = self.server.create_authn_response(
            identity=user[2], in_response_to=message.id, destination=acs,
            sp_entity_id=message.issuer.text,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=user[1]),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_assertion=True, sign_response=True)
        args = self.server.apply_binding(BINDING_HTTP_POST, str(response), acs,
                                         str(form.get("RelayState", "")), response=True)
        return web.Response(text=args["data"], content_type="text/html")
