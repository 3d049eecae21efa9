"""The spine of wedge: model artifacts, inference engines and the CLI.

Quantization and flashing live in their own packages; this one runs models.
"""
