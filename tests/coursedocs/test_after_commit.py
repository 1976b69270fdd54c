"""Withdrawing a class's access in a transaction that rolls back closes no pupil's open
document and tells no webhook; a committed change of access does reach the pupil (the
positive control: the connection was live and listening the whole time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from realtime import keys
from realtime.app import create_app
from tests.conftest import login, make_settings
from tests.coursedocs.conftest import new_doc, until
from tests.coursedocs.test_socket import _class_id, paragraph
from tests.rollback import rolled_back


async def test_a_rolled_back_unshare_closes_nothing(
    aiohttp_server: Any, tmp_path: Path, demo_db_path: Path, http: aiohttp.ClientSession,
    demo_accounts: list[dict[str, Any]], yclient: Any,
) -> None:
    app = create_app(make_settings(tmp_path, db_path=demo_db_path))
    base = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    t = next(a for a in demo_accounts if a["role"] == "teacher" and "6e A" in a["classes"]
             and a["school"] == "Collège Charlemagne")
    token = await login(http, base, t)
    auth = {"Authorization": f"Bearer {token}"}
    doc = await new_doc(http, base, token)
    class_id = await _class_id(demo_db_path, "6e A")
    access = f"{base}/api/docs/{doc['id']}/access"
    async with http.put(access, json={"classes": [{"id": class_id, "mode": "read"}]},
                        headers=auth) as r:
        assert r.status == 200, await r.text()
    writer = await yclient(base, doc["id"], token)
    paragraph(writer, "Consigne du professeur")
    pupil = next(a for a in demo_accounts if a["role"] == "student"
                 and a["classes"] == ["6e A"] and a["school"] == "Collège Charlemagne")
    reader = await yclient(base, doc["id"], await login(http, base, pupil))
    await until(lambda: "Consigne" in reader.text())

    with rolled_back(app[keys.DB]) as aborted:
        async with http.put(access, json={}, headers=auth) as r:
            assert r.status == 500
    assert aborted == [1]
    async with http.get(f"{base}/api/docs/{doc['id']}", headers=auth) as r:
        assert [c["mode"] for c in (await r.json())["classes"]] == ["read"]  # still shared

    async with http.put(access, json={"classes": [{"id": class_id, "mode": "edit"}]},
                        headers=auth) as r:
        assert r.status == 200
    await until(lambda: reader.access == ["edit"])  # positive control: told at once
    assert reader.close_code is None  # the rolled-back unshare never closed it
    paragraph(reader, "Réponse de l'élève")
    await until(lambda: "Réponse de l'élève" in writer.text())
