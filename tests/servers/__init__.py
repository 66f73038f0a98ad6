"""Tests of nbroutes/servers/: the Tornado and ASGI adapters, the transport kit, the test client."""
