"""The hardware-in-the-loop bench: a pytest plugin, a board map, built-in suites and their reports.

Boards are reached through `firmware/protocol` (SMP and the MLPerf Tiny DUT protocol) on one serial port each,
real or virtual; `wedge hil run` runs the built-in suites on every board of a map, one worker per board.
"""
