"""Testing an nbroutes API in-process: ``from nbroutes.testing import TestClient`` (or ``AsyncTestClient``).

``TestClient`` returns responses, for tests and scripts; ``AsyncTestClient``'s are awaited, for a
notebook cell (where the kernel's loop runs) and async code. The clients live with the other adapters,
in ``nbroutes.servers.testclient``; this is their public name.
"""

from nbroutes.servers.testclient import AsyncTestClient, TestClient, TestResponse

__all__ = ["AsyncTestClient", "TestClient", "TestResponse"]
