"""Signal processing shared by the sample trainer and the virtual board: PPG resampling, normalization and
heartbeat self-correlation, and the real PPG recordings they both start from.

Numpy only; imports nothing of wedge but its errors.
"""
