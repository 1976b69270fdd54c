"""SSO fixtures: a real CAS server and a real OIDC provider on loopback, and the demo
database with a few accounts carrying the ENT's external id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests import engines
from tests.conftest import StartServer, account, make_settings
from tests.engines import clone_db
from tests.identity.peers import CasServer, HostileNetwork, run_cas_server, run_oidc_provider

OIDC_CLIENT_ID = "ent-temps-reel"
OIDC_CLIENT_SECRET = "secret-du-client-" + "y" * 16


@pytest.fixture(scope="session")
def cas_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CasServer]:
    with run_cas_server(tmp_path_factory.mktemp("cas")) as server:
        yield server


@pytest.fixture(scope="session")
def oidc_upstream() -> Iterator[str]:
    with run_oidc_provider() as url:
        yield url


@pytest_asyncio.fixture
async def oidc_provider(oidc_upstream: str) -> AsyncIterator[HostileNetwork]:
    """The provider as our server reaches it (its issuer is this proxy's address)."""
    net = HostileNetwork(oidc_upstream)
    await net.start()
    yield net
    await net.close()


@pytest.fixture
def sso_people(demo_accounts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Demo accounts the ENT knows: a teacher (ACA-1001), a disabled pupil (ACA-1002)."""
    return {"ACA-1001": account(demo_accounts, "teacher"),
            "ACA-1002": account(demo_accounts, "student")}


@pytest.fixture
def sso_db_path(tmp_path: Path, demo_db_template: Path,
                sso_people: dict[str, dict[str, Any]]) -> Path:
    target = tmp_path / "ent.sqlite3"
    clone_db(demo_db_template, target)
    with engines.connect(target) as conn:
        for external_id, acct in sso_people.items():
            conn.execute("UPDATE users SET external_id = ? WHERE login = ?",
                         (external_id, acct["login"]))
        conn.execute("UPDATE users SET disabled = 1 WHERE external_id = 'ACA-1002'")
    return target


@pytest.fixture
def sso_server(start_server: StartServer, tmp_path: Path, sso_db_path: Path,
               cas_server: CasServer) -> Any:
    """Start our server with CAS (and OIDC when given a provider); returns its base URL."""

    async def start(oidc: HostileNetwork | None = None, **overrides: Any) -> str:
        cfg: dict[str, Any] = {"db_path": sso_db_path, "cas_url": cas_server.url,
                               "cas_id": "externalId"}
        if oidc is not None:
            cfg |= {"oidc_issuer": oidc.url, "oidc_client_id": OIDC_CLIENT_ID,
                    "oidc_client_secret": OIDC_CLIENT_SECRET}
        return await start_server(make_settings(tmp_path, **(cfg | overrides)))

    return start


@pytest_asyncio.fixture
async def start_saml(aiohttp_server: Any, tmp_path: Path,
                     sso_db_path: Path) -> AsyncIterator[Any]:
    """Start our server as a SAML SP of a real pysaml2 IdP on loopback; returns (our base
    URL, the IdP). The two exchange metadata as a federation would: the IdP's file is given
    to us; ours, served at /auth/saml/metadata, is loaded by the IdP."""
    import aiohttp

    from realtime.app import create_app
    from tests.identity.peers import free_port
    from tests.identity.saml_idp import SamlIdp, make_key_and_cert

    idps = []

    async def start(**overrides: Any) -> tuple[str, Any]:
        folder = tmp_path / f"saml{len(idps)}"
        folder.mkdir()
        idp = SamlIdp(folder, free_port())
        idps.append(idp)
        sp_key, sp_cert = make_key_and_cert(folder, "sp")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = make_settings(tmp_path / folder.name, db_path=sso_db_path, public_url=base,
                                 saml_idp_metadata=idp.write_metadata(), saml_sp_key=sp_key,
                                 saml_sp_cert=sp_cert, **overrides)
        await aiohttp_server(create_app(settings), port=port)
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/auth/saml/metadata") as r:
            assert r.status == 200
            sp_metadata = await r.text()
        await idp.start(sp_metadata)
        return base, idp

    yield start
    for idp in idps:
        await idp.close()


@pytest_asyncio.fixture
async def saml_server(start_saml: Any) -> tuple[str, Any]:
    """Our server and the IdP, with the NameID naming the person."""
    return await start_saml()
