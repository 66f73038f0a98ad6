"""Tests of nbroutes/core/: pure Python, in-process."""
