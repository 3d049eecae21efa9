"""Everything about a model image reaching a device: image format, wire protocols, flashing, the virtual board.

Subpackages: `image` (signed MCUboot images), `protocol` (byte layouts), `flash` (host side), `virtual` (the board).
"""
