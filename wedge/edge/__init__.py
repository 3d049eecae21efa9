"""The phone / host side of a wearable: the BLE companion bridge (`edge.bridge`) and its sinks.

It speaks the boards' wire formats (`wedge.firmware.protocol`) and nothing else of the firmware package.
"""
