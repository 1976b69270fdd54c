"""Presence rosters show only people the viewer may see (issue #13 item 16): a course
document shared with two classes shows a pupil their classmates and the adults, never the
pupils of the other class, over `/presence` (snapshot and live changes) and REST. Real
server (memory and Redis modes), real Yjs websockets, real Socket.IO clients."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import get_json, login, token_for, user_id
from tests.coursedocs.conftest import new_doc
from tests.presence.test_feature_scopes import Node, node  # noqa: F401 (a fixture)

CHARLEMAGNE = "Collège Charlemagne"


def _people(accounts: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """A teacher of two classes, a pupil of each class, a classmate of the first."""
    teacher = next(a for a in accounts if a["role"] == "teacher" and a["school"] == CHARLEMAGNE
                   and len(a["classes"]) >= 2)
    first, second = teacher["classes"][:2]
    pupils = [a for a in accounts if a["role"] == "student" and a["school"] == CHARLEMAGNE]
    a1, a2 = [p for p in pupils if p["classes"] == [first]][:2]
    b1 = next(p for p in pupils if p["classes"] == [second])
    return teacher, a1, a2, b1


async def test_a_pupil_sees_only_classmates_and_adults(
        node: Node, demo_accounts: list[dict[str, Any]],  # noqa: F811
        http: aiohttp.ClientSession) -> None:
    teacher, a1, a2, b1 = _people(demo_accounts)
    token = await login(http, node.base, teacher)
    doc = await new_doc(http, node.base, token)
    async with http.get(f"{node.base}/api/classes",
                        headers={"Authorization": f"Bearer {token}"}) as r:
        classes = {c["name"]: c["id"] for c in (await r.json())["classes"]}
    shared = [{"id": classes[teacher["classes"][0]], "mode": "read"},
              {"id": classes[teacher["classes"][1]], "mode": "read"}]
    async with http.put(f"{node.base}/api/docs/{doc['id']}/access",
                        json={"editors": [], "classes": shared},
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
    scope = f"doc:{doc['id']}"
    ids = {name: await user_id(node.base, acct)
           for name, acct in (("teacher", teacher), ("a1", a1), ("a2", a2), ("b1", b1))}

    pupil = await node.watcher(a1)  # watches before anyone opens the document
    assert (await pupil.subscribe(scope))["ok"]
    adult = await node.watcher(teacher)
    await adult.subscribe(scope)
    for acct in (b1, teacher, a2, a1):  # the other class's pupil opens it first
        await node.yjs(http, doc["id"], await token_for(node.base, acct))
    everyone = {ids["teacher"], ids["a1"], ids["a2"], ids["b1"]}
    await adult.wait_for(lambda: adult.ids(scope) == everyone)
    await pupil.wait_for(lambda: pupil.ids(scope) == everyone - {ids["b1"]})
    # the live changes never named the other class's pupil
    assert ids["b1"] not in {c["user"]["id"] for c in pupil.changes}
    # a fresh snapshot and REST say the same
    fresh = await pupil.subscribe(scope)
    assert {u["id"] for u in fresh["users"]} == everyone - {ids["b1"]}
    status, roster = await get_json(node.base, a1, f"/api/presence/{scope}")
    assert status == 200 and {u["id"] for u in roster["users"]} == everyone - {ids["b1"]}
    status, roster = await get_json(node.base, b1, f"/api/presence/{scope}")
    assert {u["id"] for u in roster["users"]} == {ids["teacher"], ids["b1"]}
    status, roster = await get_json(node.base, teacher, f"/api/presence/{scope}")
    assert {u["id"] for u in roster["users"]} == everyone
