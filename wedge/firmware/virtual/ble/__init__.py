"""The virtual board's BLE side: the air that links virtual radios (`air`), the peripheral (`device`), its GATT
database, the record buffer and streamer, and the link model that gives the virtual radio a real one's timing.

Entry point for `wedge emulate --ble`: `wedge.firmware.virtual.ble.device.run_ble_device`. Modules are not
imported here, so the air process starts without loading the inference engines.
"""
