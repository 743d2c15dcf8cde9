"""The ceiling: FastAPI answering ``GET /protected`` with no authentication at all.

Whatever Bastion adds (token verification, revocation check, limiter, headers,
request context) is the distance from this app's figures.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/protected")
async def protected() -> dict[str, str]:
    """The blog post's example answer, for user 1, without checking anything."""
    return {"message": "Hello user 1"}


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness, as every target has it (W3 samples it)."""
    return {"status": "ok"}
