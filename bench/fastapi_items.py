"""The FastAPI side of bench/validated_post.py: one validated POST, answered 201 with the item.

.venv/bin/python -m uvicorn --app-dir bench fastapi_items:app --loop uvloop --http httptools --workers 1 \
    --log-level warning --no-access-log

uvloop and httptools come with ``pip install "fastapi[standard]"`` (the bench extra); the benchmark names them
so that it fails, rather than measures the slower pure-Python stack, when they are missing.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float
    quantity: int


app = FastAPI()


@app.post("/api/items", status_code=201)
async def create(item: Item) -> Item:
    return item
