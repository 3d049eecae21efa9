"""Where the bridge puts records: SQLite (durable, the default), JSON lines, a WebSocket with a live page, and
MQTT (store and forward from the SQLite database to a broker, for a fleet).
"""

from wedge.edge.bridge.sinks.base import RemoteSink, Sink, parse_sink, parse_sinks

__all__ = ["RemoteSink", "Sink", "parse_sink", "parse_sinks"]
