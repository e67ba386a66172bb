"""The ceiling for bench/ingest.py: a bare FastAPI endpoint (`POST /bare`) that reads the body
and does nothing, served by uvicorn exactly as the services are (uvloop, httptools, no access
log); and beside it `POST /asgi`, the same in plain ASGI: what uvicorn alone costs.

    .venv/bin/python bench/bare.py PORT
"""

import sys

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

fastapi_app = FastAPI()


@fastapi_app.post("/bare")
async def bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


@fastapi_app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /asgi` in plain ASGI (what uvicorn alone costs); everything else is FastAPI's."""
    if scope["type"] == "http" and scope["path"] == "/asgi":
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await fastapi_app(scope, receive, send)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
