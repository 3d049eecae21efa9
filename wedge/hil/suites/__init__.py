"""wedge's built-in HIL suites: flash and rollback, device-vs-host accuracy, latency, fault recovery, BLE streaming.

They are ordinary pytest modules using the plugin's fixtures; `wedge hil run` runs them on every board of a map.
"""
