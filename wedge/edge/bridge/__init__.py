"""The BLE companion bridge: finds wedge boards (or any Heart Rate device), keeps them connected, and streams
every record into sinks without loss or duplicates, across drops and restarts of either side.

Library use: `Bridge(selectors, sinks, BleStack.bumble(spec) or BleStack.platform()).run(stop_event)`;
`wedge bridge` (wedge.cli.bridge) is the command line over it.
"""

from wedge.edge.bridge.daemon import Bridge, BridgeStatus
from wedge.edge.bridge.discovery import BleStack, DeviceSelector
from wedge.edge.bridge.errors import BridgeError, SinkError
from wedge.edge.bridge.session import SessionOptions
from wedge.edge.bridge.sinks import Sink, parse_sink

__all__ = ["BleStack", "Bridge", "BridgeError", "BridgeStatus", "DeviceSelector", "SessionOptions", "Sink",
           "SinkError", "parse_sink"]
