"""`/api/classes`, `/api/classes/{id}/students`, `/api/timetable`, `/api/children`,
`/api/students/{id}/guardians` (the school team's view of guardians' contact details), …"""

from __future__ import annotations

import datetime as dt

import socketio
from aiohttp import web

from realtime import keys
from realtime.api import current_principal, json_response, path_int, query_int
from realtime.directory.model import parse_date
from realtime.directory.service import DirectoryService
from realtime.errors import AppError


def _service(request: web.Request) -> DirectoryService:
    return DirectoryService(request.app[keys.DB])


async def list_classes(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"classes": await _service(request).classes(p)})


async def class_students(request: web.Request) -> web.Response:
    p = await current_principal(request)
    c, students = await _service(request).class_students(p, path_int(request, "class_id"))
    return json_response(
        {
            "class": {"id": c.id, "name": c.name, "school_id": c.school_id, "level": c.level},
            "students": [{"id": s.id, "login": s.login, "name": s.name} for s in students],
        }
    )


async def timetable(request: web.Request) -> web.Response:
    p = await current_principal(request)
    try:
        day = parse_date(
            request.query.get("date"), dt.datetime.now(request.app[keys.SETTINGS].tz).date()
        )
    except ValueError as exc:
        raise AppError("invalid", "Date invalide : attendu AAAA-MM-JJ.") from exc
    slots = await _service(request).timetable(
        p,
        day,
        class_id=query_int(request, "class_id"),
        student_id=query_int(request, "student_id"),
        teacher_id=query_int(request, "teacher_id"),
    )
    return json_response({"date": day.isoformat(), "weekday": day.isoweekday(), "slots": slots})


async def children(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response({"children": await _service(request).children(p)})


async def guardian_contacts(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(
        await _service(request).guardian_contacts(p, path_int(request, "student_id")))


async def school(request: web.Request) -> web.Response:
    p = await current_principal(request)
    return json_response(await _service(request).school(p, path_int(request, "school_id")))


def setup(app: web.Application, sio: socketio.AsyncServer) -> None:
    app.router.add_get("/api/classes", list_classes)
    app.router.add_get("/api/classes/{class_id}/students", class_students)
    app.router.add_get("/api/timetable", timetable)
    app.router.add_get("/api/children", children)
    app.router.add_get("/api/schools/{school_id}", school)
    app.router.add_get("/api/students/{student_id}/guardians", guardian_contacts)
