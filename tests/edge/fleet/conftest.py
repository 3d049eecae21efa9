"""The virtual air of the bridge tests, for the fleet tests that stream from virtual boards."""

from tests.edge.bridge.conftest import air

__all__ = ["air"]
