"""Servers: the adapters that carry HTTP to the core's ``App`` and back.

Tornado (the kernel's own loop, and ``nbroutes serve``), ASGI (uvicorn, gunicorn, Mangum) and the
in-process test client. What they share (reading a body within its limit, the fallback 500, the
access-log line, closing streams, binding sockets, public URLs) lives in ``transport``.
They import the core, never the notebook's widgets or IPython.
"""
