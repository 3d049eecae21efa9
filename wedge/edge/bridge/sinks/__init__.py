"""Where the bridge puts records: SQLite (durable, the default), JSON lines, and a WebSocket with a live page.

MQTT is not here yet: it needs a broker in the tests (amqtt could be one) and has not been written.
"""

from wedge.edge.bridge.sinks.base import Sink, parse_sink

__all__ = ["Sink", "parse_sink"]
