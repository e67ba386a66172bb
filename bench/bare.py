"""The ceiling for bench/ingest.py: a bare FastAPI endpoint (`POST /bare`) that reads the body
and does nothing, served by uvicorn exactly as the services are (uvloop, httptools, no access
log); beside it `POST /asgi`, the same in plain ASGI: what uvicorn alone costs; and, given a
broker, `POST /kafka`: plain ASGI that publishes the raw body with acks=all (aiokafka, as
ingest does) and answers 202 once acknowledged: the floor of any webhook that waits for the
broker, before verifying, parsing or validating anything; and `POST /minimal`: a signed
Standard Webhooks delivery handled with the least code that still does ingest's work
(timestamp and HMAC checked, the JSON read, the contract's `ResponseReceived` built, its id
derived, encoded, published with acks=all, the ids answered), without ingest's structure:
no source lookup, adapters, metrics, error mapping or timeout. What ingest's structure costs
is the gap between this line and ingest's.

    BENCH_WEBHOOK_SECRET=whsec_... .venv/bin/python bench/bare.py PORT [BOOTSTRAP_SERVERS]
"""

import base64
import contextlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from nps_events import Customer, ResponseReceived, encode

BOOTSTRAP = sys.argv[2] if len(sys.argv) > 2 else None
producer: AIOKafkaProducer | None = None
SECRET = os.environ.get("BENCH_WEBHOOK_SECRET", "whsec_")
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


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


async def minimal(scope: Scope, body: bytes) -> bytes:
    """Ingest's work on a Standard Webhooks delivery, and nothing else (see the module doc)."""
    headers = dict(scope["headers"])
    msg_id, stamp = headers[b"webhook-id"], headers[b"webhook-timestamp"]
    signature = headers[b"webhook-signature"].split(b",", 1)[1]
    if abs(time.time() - int(stamp)) > 300:
        raise ValueError("stale")
    expected = hmac.digest(KEY, msg_id + b"." + stamp + b"." + body, "sha256")
    if not hmac.compare_digest(expected, base64.b64decode(signature)):
        raise ValueError("bad signature")
    data = json.loads(body)["data"]
    now = datetime.now(UTC)
    event = ResponseReceived(
        response_id=ResponseReceived.derive_response_id("bench", data["response_id"]),
        source="bench",
        provider_response_id=data["response_id"],
        survey_id=data["survey_id"],
        customer=Customer(id=data["customer"]["id"], email=data["customer"]["email"]),
        score=data["score"],
        comment=data["comment"],
        responded_at=datetime.fromisoformat(data["responded_at"]),
        received_at=now,
    )
    message = encode(event, source="/bench", time=now)
    assert producer is not None
    await producer.send_and_wait(
        "bench.floor", message.value, key=message.key, headers=message.headers
    )
    accepted = {"event_id": str(event.event_id()), "response_id": str(event.response_id)}
    return json.dumps({"accepted": [accepted]}).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /asgi`, `/kafka` and `/minimal` in plain ASGI; everything else is FastAPI's."""
    if scope["type"] == "http" and scope["path"] in ("/asgi", "/kafka", "/minimal"):
        body = await _body(receive)
        answer = b""
        if scope["path"] == "/kafka" and producer is not None:
            await producer.send_and_wait("bench.floor", body, key=body[-12:])
        elif scope["path"] == "/minimal":
            answer = await minimal(scope, body)
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": answer})
        return
    await fastapi_app(scope, receive, send)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
