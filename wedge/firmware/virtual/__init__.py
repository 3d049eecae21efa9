"""The virtual board: a pty UART, file-backed flash with two slots, MCUboot, an SMP server and a TFLM runtime.

Run one with `emulator.run_emulator(board, board.BoardOptions(...), announce)` (what `wedge emulate` does); the
parts are small modules (uart, flash, trailer, swap, bootloader, runtime, smp_server, *_mgmt, control) that
later layers build on. Nothing is imported here, so a CLI can load the light modules alone.
"""
