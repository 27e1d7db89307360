"""The plain reference for bench/intake_load.py: the least a web endpoint can do for an intake — insert a ticket and
an event with asyncpg, publish to Redis. Run by the benchmark with uvicorn (same worker count as the hotline)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request

DSN = os.environ["PLAIN_DSN"]
REDIS = os.environ["PLAIN_REDIS"]
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    state["pool"] = await asyncpg.create_pool(DSN, min_size=4, max_size=20)
    state["redis"] = aioredis.from_url(REDIS)
    async with state["pool"].acquire() as conn, conn.transaction():
        # both uvicorn workers start at once: one creates the tables, the other waits for it (CREATE TABLE IF NOT
        # EXISTS alone races on the catalogue's unique index)
        await conn.execute("SELECT pg_advisory_xact_lock(7310)")
        await conn.execute("""CREATE TABLE IF NOT EXISTS plain_tickets (id bigserial PRIMARY KEY, external_id text
                              UNIQUE, text text, received_at timestamptz DEFAULT now())""")
        await conn.execute("""CREATE TABLE IF NOT EXISTS plain_events (id bigserial PRIMARY KEY, ticket_id bigint,
                              type text, created_at timestamptz DEFAULT now())""")
    yield
    await state["pool"].close()
    await state["redis"].aclose()


app = FastAPI(lifespan=lifespan)


@app.post("/plain")
async def plain(request: Request) -> dict[str, Any]:
    body = await request.json()
    async with state["pool"].acquire() as conn, conn.transaction():
        ticket_id = await conn.fetchval("INSERT INTO plain_tickets (external_id, text) VALUES ($1, $2) RETURNING id",
                                        body["external_id"], body["text"])
        await conn.execute("INSERT INTO plain_events (ticket_id, type) VALUES ($1, 'receive')", ticket_id)
    await state["redis"].publish("plain-bench", json.dumps({"ticket_id": ticket_id}))
    return {"id": ticket_id}
