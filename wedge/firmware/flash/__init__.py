"""Host-side flashing over SMP (mcumgr) through smpclient: identify, check, upload with resume, test, confirm.

`flash_image(port, image, name, FlashOptions(...), observer)` does it all; `DeviceSession` is the connection
that `wedge device` commands use.
"""
