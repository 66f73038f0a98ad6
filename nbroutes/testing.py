"""Testing an nbroutes API in-process: ``from nbroutes.testing import TestClient``.

The client lives with the other adapters, in ``nbroutes.servers.testclient``; this is its public name.
"""

from nbroutes.servers.testclient import TestClient, TestResponse

__all__ = ["TestClient", "TestResponse"]
