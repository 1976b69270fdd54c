"""What python-socketio's single Redis channel costs when nodes are added, and what one
channel per room saves.

    .venv/bin/python -m bench.redis_channel [--nodes 4] [--rate 2000] [--seconds 8]

N node processes, each a python-socketio AsyncServer on uvloop with a Redis client manager
(no HTTP clients: the cost measured is the manager's). Every node holds `--rooms` rooms with
one local member each (a registered participant without a socket, so delivery is the same
no-op on both managers). Node 0 emits `--rate` events per second, each to one room chosen at
random among all nodes' rooms — a message to one person, as a notification or a presence
change is. Each emit is useful to exactly one node.

For each manager (the stock `AsyncRedisManager`, and `RoomChannelRedisManager` from
realtime/fanout.py) the table gives every node's CPU over the window, % of one core, and
what the single channel costs a node per emit it receives for nothing. An idle run (no
emits) of the same nodes is the baseline of each.
Results go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import secrets
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.boards import machine_cpu, proc_cpu_s

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
NS = "/"


def node_main(conn: Connection, index: int, spec: dict[str, Any]) -> None:
    import uvloop

    uvloop.run(_node(conn, index, spec))


async def _node(conn: Connection, index: int, spec: dict[str, Any]) -> None:
    import socketio

    from realtime.fanout import RoomChannelRedisManager

    channel = spec["channel"]
    manager = (RoomChannelRedisManager(REDIS_URL, channel=channel) if spec["manager"] == "rooms"
               else socketio.AsyncRedisManager(REDIS_URL, channel=channel))
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, logger=False,
                               engineio_logger=False)
    sio.manager_initialized = True
    manager.initialize()
    for k in range(spec["rooms"]):  # one local member per room, no socket behind it
        sid = f"n{index}-{k}"
        manager.basic_enter_room(sid, NS, None, eio_sid=f"eio-{sid}")
        await manager.enter_room(sid, NS, f"room:{index}:{k}")
    await asyncio.sleep(1.0)  # subscriptions settle
    conn.send("ready")
    t0, t1 = conn.recv()
    if index == 0 and spec["rate"] > 0:
        rooms = [f"room:{n}:{k}" for n in range(spec["nodes"]) for k in range(spec["rooms"])]
        period = 1 / spec["rate"]
        due = t0
        payload = {"board_id": 1, "user_id": 7, "x": 120.5, "y": 64.25, "laser": True}
        while due < t1:
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await sio.emit("pointer", payload, room=random.choice(rooms), namespace=NS)
            due += period
    else:
        await asyncio.sleep(max(0.0, t1 - time.time()))
    await asyncio.sleep(0.5)
    conn.send("done")


def run(manager: str, args: argparse.Namespace, rate: float) -> list[float]:
    ctx = mp.get_context("spawn")
    spec = {"manager": manager, "rooms": args.rooms, "nodes": args.nodes, "rate": rate,
            "channel": f"bench-{secrets.token_hex(4)}"}
    procs = []
    for i in range(args.nodes):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=node_main, args=(child, i, spec), daemon=True)
        p.start()
        procs.append((p, parent))
    try:
        for _p, c in procs:
            if not c.poll(60) or c.recv() != "ready":
                raise RuntimeError("a node did not start")
        t0 = time.time() + 0.5
        t1 = t0 + args.seconds
        for _p, c in procs:
            c.send((t0, t1))
        time.sleep(max(0.0, t0 - time.time()))
        cpu0 = [proc_cpu_s(p.pid) for p, _c in procs]  # type: ignore[arg-type]
        time.sleep(max(0.0, t1 - time.time()))
        cpu1 = [proc_cpu_s(p.pid) for p, _c in procs]  # type: ignore[arg-type]
        for _p, c in procs:
            c.poll(30)
    finally:
        for p, _c in procs:
            p.terminate()
            p.join(5)
    return [100 * (b - a) / args.seconds for a, b in zip(cpu0, cpu1, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.redis_channel", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--rooms", type=int, default=200, help="rooms per node (200)")
    p.add_argument("--rate", type=float, default=2000, help="emits per second (2000)")
    p.add_argument("--seconds", type=float, default=8)
    args = p.parse_args()
    busy0, _ = machine_cpu()
    t = time.time()
    rows = []
    for manager in ("stock", "rooms"):
        idle = run(manager, args, 0)
        busy = run(manager, args, args.rate)
        rows.append((manager, idle, busy))
    machine = 100 * (machine_cpu()[0] - busy0) / (time.time() - t)
    print(f"\n{args.nodes} nodes, {args.rooms} rooms each, {args.rate:g} emits/s from node 0, "
          f"{args.seconds:g} s; load average {open('/proc/loadavg').read().split()[0]}, "
          f"machine {machine:.0f}% of {100 * (os.cpu_count() or 1)}% during the runs")
    print("| manager | node 0 CPU % (idle → emitting) | other nodes CPU % (idle → busy) "
          "| messages each other node receives /s |")
    print("|---|---|---|---|")
    others_mean = {}
    for manager, idle, busy in rows:
        others = [b - i for i, b in zip(idle[1:], busy[1:], strict=True)]
        others_mean[manager] = sum(others) / len(others)
        received = args.rate if manager == "stock" else args.rate / args.nodes
        print(f"| {manager} | {idle[0]:.0f} → {busy[0]:.0f} | "
              + ", ".join(f"{i:.0f} → {b:.0f}" for i, b in zip(idle[1:], busy[1:], strict=True))
              + f" | {received:,.0f} |")
    wasted = (others_mean["stock"] - others_mean["rooms"]) / 100
    useless = args.rate * (args.nodes - 1) / args.nodes
    print(f"\nThe single channel costs each receiving node {100 * wasted:.0f} points of a core "
          f"at {args.rate:g} emits/s: {wasted / useless * 1e6:.0f} µs per emit meant for "
          f"another node ({useless:,.0f}/s of them).")

if __name__ == "__main__":
    main()
