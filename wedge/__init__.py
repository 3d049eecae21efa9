"""wedge: a wearable edge-inference toolkit.

Quantize models to int8, flash them to boards, stream their results over BLE.
"""

__version__ = "0.1.0"
