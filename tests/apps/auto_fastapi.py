"""An unmodified FastAPI app: nothing here knows about monitoring (auto-instrumentation tests).

Run as ``opentelemetry-instrument uvicorn auto_fastapi:app``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

app = FastAPI()
router = APIRouter(prefix="/api")


@router.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, int]:
    return {"user_id": user_id}


@app.get("/")
async def root() -> dict[str, str]:
    return {"hello": "world"}


app.include_router(router)
