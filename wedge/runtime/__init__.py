"""The runtime layer, under everything that runs or reads a model: tensor specs and quantization parameters
(`types`), model artifacts read without running them (`artifacts`), and inference engines (`engines`).

It imports only `wedge.boards` and `wedge.errors`; quantize, firmware, the bridge and the bench build on it.
"""
