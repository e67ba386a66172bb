"""The ceiling for bench/ingest.py: a bare FastAPI endpoint (`POST /bare`) that reads the body
and does nothing, served by uvicorn exactly as the services are (uvloop, httptools, no access
log); beside it `POST /asgi`, the same in plain ASGI: what uvicorn alone costs; and, given a
broker, `POST /kafka`: plain ASGI that publishes the raw body with acks=all (aiokafka, as
ingest does) and answers 202 once acknowledged: the floor of any webhook that waits for the
broker, before verifying, parsing or validating anything.

    .venv/bin/python bench/bare.py PORT [BOOTSTRAP_SERVERS]
"""

import contextlib
import sys
from collections.abc import AsyncIterator

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

BOOTSTRAP = sys.argv[2] if len(sys.argv) > 2 else None
producer: AIOKafkaProducer | None = None


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global producer  # noqa: PLW0603 - the bench's one producer
    if BOOTSTRAP:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
    yield
    if producer is not None:
        await producer.stop()


fastapi_app = FastAPI(lifespan=lifespan)


@fastapi_app.post("/bare")
async def bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


@fastapi_app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /asgi` and `POST /kafka` in plain ASGI; everything else is FastAPI's."""
    if scope["type"] == "http" and scope["path"] in ("/asgi", "/kafka"):
        body = await _body(receive)
        if scope["path"] == "/kafka" and producer is not None:
            await producer.send_and_wait("bench.floor", body, key=body[-12:])
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await fastapi_app(scope, receive, send)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
