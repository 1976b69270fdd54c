"""Issue #18, course documents: ids never reused, a restore that keeps today's text, automatic
versions on a timeline that can be previewed, images uploaded into a course."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import make_settings
from tests.coursedocs.conftest import new_doc, teacher_token, until
from tests.coursedocs.test_attacks import auth, shared_with_pupil
from tests.coursedocs.test_socket import paragraph


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (red pixels), written by hand: signature, IHDR, IDAT, IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack("!I", len(data)) + kind + data
                + struct.pack("!I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_a_deleted_course_id_is_never_given_again(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    await new_doc(http, demo_server, token, "Premier")
    second = await new_doc(http, demo_server, token, "Deuxième")
    async with http.delete(f"{demo_server}/api/docs/{second['id']}", headers=auth(token)) as r:
        assert r.status == 204
    third = await new_doc(http, demo_server, token, "Troisième")
    assert third["id"] > second["id"]


async def test_restore_keeps_the_current_text_as_a_version_first(
    demo_server: str, http: aiohttp.ClientSession, demo_accounts: list[dict[str, Any]],
    yclient: Any,
) -> None:
    token = await teacher_token(http, demo_server, demo_accounts)
    doc = await new_doc(http, demo_server, token)
    base = f"{demo_server}/api/docs/{doc['id']}"
    c = await yclient(demo_server, doc["id"], token)
    paragraph(c, "Introduction")
    await asyncio.sleep(0.2)
    async with http.post(f"{base}/versions", json={"label": "Début"}, headers=auth(token)) as r:
        first = await r.json()
        assert first["kind"] == "manual"
    paragraph(c, "Travail de toute une heure")
    await asyncio.sleep(0.2)
    async with http.post(f"{base}/versions/{first['id']}/restore", headers=auth(token)) as r:
        body = await r.json()
        assert r.status == 200, body
    saved = body["saved"]
    assert saved["kind"] == "restore" and "Début" in saved["label"]
    await until(lambda: "Travail" not in c.text())
    # Nothing is lost: the version kept just before holds the hour of work, and can be seen.
    async with http.get(f"{base}/versions/{saved['id']}?format=md", headers=auth(token)) as r:
        assert r.status == 200 and "Travail de toute une heure" in await r.text()
    async with http.get(f"{base}/versions/{saved['id']}", headers=auth(token)) as r:
        preview = await r.json()
        assert preview["content"]["type"] == "doc"
    async with http.get(f"{base}/versions", headers=auth(token)) as r:
        kinds = [v["kind"] for v in (await r.json())["versions"]]
        assert kinds == ["restore", "manual"]
    async with http.get(f"{base}/versions/999999", headers=auth(token)) as r:
        assert r.status == 404


async def test_automatic_versions_while_editing_and_at_session_end(
    tmp_path: Path, demo_db_path: Path, start_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            docs_auto_version_s=0.5))
    token = await teacher_token(http, base, demo_accounts)
    doc = await new_doc(http, base, token)
    versions = f"{base}/api/docs/{doc['id']}/versions"

    async def listed() -> list[dict[str, Any]]:
        async with http.get(versions, headers=auth(token)) as r:
            return list((await r.json())["versions"])

    # A short session: one edit, then everyone leaves: « Fin de séance » keeps it.
    c = await yclient(base, doc["id"], token)
    paragraph(c, "dernier mot")
    await asyncio.sleep(0.1)
    await c.close()
    got: list[dict[str, Any]] = []
    for _ in range(100):
        got = await listed()
        if got:
            break
        await asyncio.sleep(0.05)
    assert [(v["label"], v["kind"]) for v in got] == [("Fin de séance", "auto")]
    async with http.get(f"{versions}/{got[0]['id']}?format=md", headers=auth(token)) as r:
        assert "dernier mot" in await r.text()
    # A longer one: a version every `docs_auto_version_s` of editing.
    c = await yclient(base, doc["id"], token)
    for i in range(8):  # two seconds of typing
        paragraph(c, f"phrase {i}")
        await asyncio.sleep(0.25)
    during = [v for v in await listed() if v["label"] == "Version automatique"]
    assert 2 <= len(during) <= 5 and all(v["kind"] == "auto" for v in during)
    async with http.get(f"{versions}/{during[0]['id']}?format=md", headers=auth(token)) as r:
        assert "phrase" in await r.text()


async def test_images_uploaded_into_a_course(
    tmp_path: Path, demo_db_path: Path, start_server: Any, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]],
) -> None:
    base = await start_server(make_settings(tmp_path, db_path=demo_db_path,
                                            docs_image_bytes=4096,
                                            docs_images_total_bytes=6000))
    token, ptoken, doc = await shared_with_pupil(http, base, demo_accounts, demo_db_path, "read")
    url = f"{base}/api/docs/{doc['id']}/images"
    image = png()
    async with http.post(url, data=image, headers={**auth(token),
                                                   "Content-Type": "image/png"}) as r:
        body = await r.json()
        assert r.status == 201, body
    src = body["src"]
    assert src.startswith(f"/api/docs/{doc['id']}/images/")
    async with http.get(f"{base}{src}", headers=auth(ptoken)) as r:  # a pupil of the class
        assert r.status == 200 and await r.read() == image
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in r.headers["Content-Security-Policy"]
    refusals = [
        (token, "image/svg+xml", b"<svg onload='alert(1)'/>", 415),
        (token, "image/png", b"<html>not a png</html>", 400),
        (token, "image/png", png(80, 80) + b"\x00" * 5000, 413),
        (ptoken, "image/png", image, 403),  # read-only: may see, may not add
    ]
    for who, mime, data, status in refusals:
        async with http.post(url, data=data, headers={**auth(who),
                                                      "Content-Type": mime}) as r:
            assert r.status == status, (mime, await r.text())
    # The course's images together are bounded too (a pupil cannot fill the disk).
    for size, status in ((2000, 201), (3000, 201), (1500, 413)):
        data = png() + bytes(size)
        async with http.post(url, data=data, headers={**auth(token),
                                                      "Content-Type": "image/png"}) as r:
            assert r.status == status, await r.text()
    stranger = await teacher_token(http, base, demo_accounts, 1)
    async with http.get(f"{base}{src}", headers=auth(stranger)) as r:
        assert r.status == 404
