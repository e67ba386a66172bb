"""The ceiling for bench/ingest.py: a bare FastAPI endpoint that reads the body and does
nothing, served by uvicorn exactly as the services are (uvloop, httptools, no access log).

    .venv/bin/python bench/bare.py PORT
"""

import sys

import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/bare")
async def bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


@app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
