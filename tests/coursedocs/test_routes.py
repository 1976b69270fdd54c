"""`/api/docs…` for the ENT: listing, create, rename, share, delete, formats, versions,
bad input, and signed debounced webhooks received by a real local aiohttp server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from realtime.coursedocs import webhook
from tests.conftest import login, make_settings
from tests.coursedocs.conftest import new_doc, teacher_token, until
from tests.coursedocs.test_socket import _class_id


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write(client: Any, text: str) -> None:
    with client.doc.transaction():
        h = client.frag.children.append(XmlElement("heading", {"level": 1}))
        h.children.append(XmlText(text))


async def test_create_list_rename_share_delete(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    demo_db_path: Path,
) -> None:
    owner = await teacher_token(http, demo_server, demo_accounts, 0)
    colleague = await teacher_token(http, demo_server, demo_accounts, 1)
    doc = await new_doc(http, demo_server, owner, "  Chapitre 1 :   la Gaule  ")
    assert doc["title"] == "Chapitre 1 : la Gaule" and doc["can_manage"]
    assert doc["ws"] == f"/yjs/{doc['id']}"
    async with http.get(f"{demo_server}/api/docs", headers=auth(colleague)) as r:
        assert doc["id"] not in [d["id"] for d in (await r.json())["docs"]]
    async with http.patch(f"{demo_server}/api/docs/{doc['id']}", json={"title": "Chapitre 2"},
                          headers=auth(colleague)) as r:
        assert r.status == 404  # not theirs: same answer as absent
    colleague_id = (await (await http.get(f"{demo_server}/api/me",
                                          headers=auth(colleague))).json())["user"]["id"]
    class_id = await _class_id(demo_db_path, "6e A")
    async with http.put(f"{demo_server}/api/docs/{doc['id']}/access", headers=auth(owner),
                        json={"editors": [colleague_id],
                              "classes": [{"id": class_id, "mode": "read"}]}) as r:
        body = await r.json()
        assert r.status == 200, body
        assert body["editors"][0]["id"] == colleague_id
        assert body["classes"] == [{"id": class_id, "mode": "read"}]
    async with http.get(f"{demo_server}/api/docs", headers=auth(colleague)) as r:
        mine = {d["id"]: d for d in (await r.json())["docs"]}
        assert mine[doc["id"]]["can_edit"] and not mine[doc["id"]]["can_manage"]
    async with http.patch(f"{demo_server}/api/docs/{doc['id']}", json={"title": "Chapitre 2"},
                          headers=auth(colleague)) as r:
        assert r.status == 403  # visible, but only the owner renames
    async with http.patch(f"{demo_server}/api/docs/{doc['id']}", json={"title": "Chapitre 2"},
                          headers=auth(owner)) as r:
        assert (await r.json())["title"] == "Chapitre 2"
    async with http.delete(f"{demo_server}/api/docs/{doc['id']}", headers=auth(colleague)) as r:
        assert r.status == 403
    async with http.delete(f"{demo_server}/api/docs/{doc['id']}", headers=auth(owner)) as r:
        assert r.status == 204
    async with http.get(f"{demo_server}/api/docs/{doc['id']}", headers=auth(owner)) as r:
        assert r.status == 404


@pytest.mark.parametrize(("body", "status"), [
    ({}, 400), ({"title": ""}, 400), ({"title": "   "}, 400), ({"title": "x" * 201}, 400),
    ({"title": 3}, 400), ({"title": "ok", "extra": 1}, 400), ("pas du json", 400),
])
async def test_bad_bodies_are_refused_and_create_nothing(
    body: Any, status: int, demo_server: str, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    kwargs = {"data": body, "headers": {**auth(token), "Content-Type": "application/json"}} \
        if isinstance(body, str) else {"json": body, "headers": auth(token)}
    async with http.post(f"{demo_server}/api/docs", **kwargs) as r:
        assert r.status == status
        assert (await r.json())["error"]["message"]
    async with http.get(f"{demo_server}/api/docs", headers=auth(token)) as r:
        assert (await r.json())["docs"] == []


async def test_share_refuses_foreign_people_and_classes(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    demo_db_path: Path,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    student = next(a for a in demo_accounts if a["role"] == "student")
    sid = (await (await http.get(f"{demo_server}/api/me",
                                 headers=auth(await login(http, demo_server, student)))
                  ).json())["user"]["id"]
    for body in ({"editors": [sid]}, {"classes": [{"id": 999999, "mode": "read"}]},
                 {"classes": [{"id": 1, "mode": "admin"}]},
                 {"classes": [{"id": 1, "mode": "read"}, {"id": 1, "mode": "edit"}]}):
        async with http.put(f"{demo_server}/api/docs/{doc['id']}/access", json=body,
                            headers=auth(token)) as r:
            assert r.status == 400, body
    async with http.get(f"{demo_server}/api/docs/{doc['id']}", headers=auth(token)) as r:
        got = await r.json()
        assert got["editors"] == [] and got["classes"] == []


async def test_students_and_others_cannot_create(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
) -> None:
    for role in ("student", "parent", "cpe"):
        acct = next(a for a in demo_accounts if a["role"] == role)
        token = await login(http, demo_server, acct)
        async with http.post(f"{demo_server}/api/docs", json={"title": "x"},
                             headers=auth(token)) as r:
            assert r.status == 403, role
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{demo_server}/api/docs") as r:
            assert r.status == 401


async def test_formats_by_accept_and_query(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token, "Géographie")
    c = await yclient(demo_server, doc["id"], token)
    write(c, "Les fleuves de France")
    url = f"{demo_server}/api/docs/{doc['id']}"

    async def fetch(accept: str | None = None, fmt: str | None = None) -> aiohttp.ClientResponse:
        headers = auth(token) | ({"Accept": accept} if accept else {})
        r = await http.get(url + (f"?format={fmt}" if fmt else ""), headers=headers)
        await r.read()
        return r

    for _ in range(50):
        j = await (await fetch()).json()
        if j["content"]["content"]:
            break
        await asyncio.sleep(0.05)
    assert j["title"] == "Géographie"
    assert j["content"]["content"][0]["content"][0]["text"] == "Les fleuves de France"
    html = await fetch("text/html")
    assert html.content_type == "text/html"
    assert "<h1>Les fleuves de France</h1>" in await html.text()
    md = await fetch(fmt="md")
    assert md.content_type == "text/markdown"
    assert (await md.text()).startswith("# Géographie\n\n# Les fleuves de France")
    raw = await fetch("application/octet-stream")
    assert raw.content_type == "application/octet-stream"
    d = Doc()
    d.apply_update(await raw.read())
    assert "Les fleuves de France" in str(d.get("prosemirror", type=XmlFragment))
    assert (await fetch(fmt="pdf")).status == 400


async def test_versions_restore_reaches_connected_clients(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    a = await yclient(demo_server, doc["id"], token)
    b = await yclient(demo_server, doc["id"], token)
    write(a, "Première rédaction")
    await until(lambda: "Première" in b.text())
    url = f"{demo_server}/api/docs/{doc['id']}/versions"
    async with http.post(url, json={"label": "Avant la réunion"}, headers=auth(token)) as r:
        version = await r.json()
        assert r.status == 201, version
    write(b, "Ajout malheureux")
    await until(lambda: "malheureux" in a.text())
    async with http.get(url, headers=auth(token)) as r:
        assert [v["label"] for v in (await r.json())["versions"]] == ["Avant la réunion"]
    async with http.post(f"{url}/{version['id']}/restore", headers=auth(token)) as r:
        assert r.status == 200
    await until(lambda: "malheureux" not in a.text() and "malheureux" not in b.text())
    assert "Première rédaction" in a.text() and a.text() == b.text()
    async with http.post(f"{url}/999999/restore", headers=auth(token)) as r:
        assert r.status == 404
    async with http.post(url, json={"label": ""}, headers=auth(token)) as r:
        assert r.status == 400


async def test_students_of_an_editable_class_cannot_restore(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    demo_db_path: Path,
) -> None:
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    token = await login(http, demo_server, t)
    doc = await new_doc(http, demo_server, token)
    class_id = await _class_id(demo_db_path, "6e A")
    await http.put(f"{demo_server}/api/docs/{doc['id']}/access", headers=auth(token),
                   json={"classes": [{"id": class_id, "mode": "edit"}]})
    student = next(a for a in demo_accounts if a["role"] == "student"
                   and a["classes"] == ["6e A"] and a["school"] == "Collège Charlemagne")
    stoken = await login(http, demo_server, student)
    async with http.post(f"{demo_server}/api/docs/{doc['id']}/versions",
                         json={"label": "v"}, headers=auth(stoken)) as r:
        assert r.status == 403
    async with http.get(f"{demo_server}/api/docs", headers=auth(stoken)) as r:
        docs = (await r.json())["docs"]
        assert [d["id"] for d in docs] == [doc["id"]] and docs[0]["can_edit"]


async def test_signed_debounced_webhook(
    tmp_path: Path, demo_db_path: Path, start_server: Any, aiohttp_server: Any,
    http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    received: list[dict[str, Any]] = []
    secret = "secret-partagé-avec-l-ENT"

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        ok = webhook.verify(secret, request.headers["X-ENT-Timestamp"], body,
                            request.headers["X-ENT-Signature"])
        received.append({"ok": ok, "body": json.loads(body)})
        return web.Response(status=204 if ok else 401)

    ent = web.Application()
    ent.router.add_post("/hooks/cours", receiver)
    ent_server = await aiohttp_server(ent)
    base = await start_server(make_settings(
        tmp_path, db_path=demo_db_path,
        docs_webhook_url=str(ent_server.make_url("/hooks/cours")),
        docs_webhook_secret=secret, docs_webhook_debounce_s=1.0))
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token, "Sciences")
    c = await yclient(base, doc["id"], token)
    for i in range(15):  # a burst of keystrokes…
        write(c, f"frappe {i}")
        await asyncio.sleep(0.005)
    await until(lambda: len(received) >= 1)
    await asyncio.sleep(1.5)
    assert len(received) == 1  # …is one call
    assert received[0]["ok"]
    assert received[0]["body"]["event"] == "course.changed"
    assert received[0]["body"]["doc_id"] == doc["id"]
    assert received[0]["body"]["title"] == "Sciences"
    assert not webhook.verify(secret, "1", b"{}", webhook.sign("autre", "1", b"{}"))
    async with http.delete(f"{base}/api/docs/{doc['id']}", headers=auth(token)) as r:
        assert r.status == 204
    await until(lambda: any(x["body"]["event"] == "course.deleted" for x in received))


async def test_creations_are_rate_limited_per_user(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    statuses = []
    for i in range(32):
        async with http.post(f"{demo_server}/api/docs", json={"title": f"Cours {i}"},
                             headers=auth(token)) as r:
            statuses.append(r.status)
            if r.status == 429:
                body = await r.json()
                assert body["error"]["code"] == "rate_limited"
                assert int(r.headers["Retry-After"]) >= 1
    assert statuses[:30] == [201] * 30 and statuses[30:] == [429, 429]
    async with http.get(f"{demo_server}/api/docs", headers=auth(token)) as r:
        assert len((await r.json())["docs"]) == 30  # the refused ones created nothing
    other = await teacher_token(http, demo_server, demo_accounts, 1)  # per user
    async with http.post(f"{demo_server}/api/docs", json={"title": "Le mien"},
                         headers=auth(other)) as r:
        assert r.status == 201
