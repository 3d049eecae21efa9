"""From a record's model id to what its outputs mean: the models the bridge knows, and one record's verdict.

A model is known from the device itself (the wedge stream's model info characteristic, read once per connection
and whenever a record names a model not seen yet) or from files given to the bridge (`wedge bridge --model`).
`verdict` turns a record's outputs into what a person reads: the class and its probability for a classifier
(softmax when the outputs are logits), the value and its unit for a regression model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bleak import BleakClient
from bleak.exc import BleakError

from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_model_info import ModelInfo, decode_model_info, page_command

# Outputs within this of summing to 1, each in [0, 1], are probabilities already (a softmax inside the model).
PROBABILITY_SUM_TOLERANCE: Final[float] = 0.02
# A model with more labels than this is refused from a device (a malformed or hostile value, not a ring).
MAX_PAGES: Final[int] = 256

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What a record says: `label` (a class name, or the unit of a regression value) and `score` (the class's
    probability, or the value); `scores` every class's probability, in label order (None for a regression)."""

    label: str | None
    score: float | None
    scores: tuple[float, ...] | None = None


NO_VERDICT: Final = Verdict(None, None)


def _probabilities(values: Sequence[float]) -> tuple[float, ...]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) != len(values):
        return tuple(math.nan for _ in values)
    if all(0.0 <= v <= 1.0 for v in values) and abs(sum(values) - 1.0) <= PROBABILITY_SUM_TOLERANCE:
        return tuple(values)
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return tuple(e / total for e in exps)


def verdict(values: Sequence[float], model: ModelInfo | None) -> Verdict:
    """The record's verdict under its model; NO_VERDICT for a model nobody named, or outputs that do not fit it."""
    if model is None or not values:
        return NO_VERDICT
    labels = model.labels
    if not labels:
        return Verdict(model.unit, float(values[0])) if model.unit is not None else NO_VERDICT
    if len(values) == 1 and len(labels) == 2:
        # One output for two classes: a probability (or a logit) of the second.
        value = float(values[0])
        p = value if 0.0 <= value <= 1.0 else 1.0 / (1.0 + math.exp(-max(min(value, 60.0), -60.0)))
        scores: tuple[float, ...] = (1.0 - p, p)
    elif len(values) == len(labels):
        scores = _probabilities([float(v) for v in values])
    else:
        return NO_VERDICT
    if any(math.isnan(s) for s in scores):
        return Verdict(None, None, scores)
    best = max(range(len(scores)), key=scores.__getitem__)
    return Verdict(labels[best], scores[best], scores)


class ModelCatalog:
    """The models the bridge can name, by model id (one catalog for every device: an id is a model's hash)."""

    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._models = {m.model_id: m for m in models}

    def get(self, model_id: int | None) -> ModelInfo | None:
        return None if model_id is None else self._models.get(model_id)

    def add(self, model: ModelInfo) -> None:
        known = self._models.get(model.model_id)
        if known is not None and known != model:
            logger.info("model %08x: %s %s now (was %s %s)", model.model_id, model.name, model.version,
                        known.name, known.version)
        self._models[model.model_id] = model

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def __len__(self) -> int:
        return len(self._models)


async def read_model_info(client: BleakClient) -> ModelInfo | None:
    """The model the device says it runs (every page of its labels), or None from a device without the model
    info characteristic, or one whose answer does not decode (logged)."""
    characteristic = client.services.get_characteristic(ids.WEDGE_MODEL_INFO)
    if characteristic is None:
        return None
    try:
        page = decode_model_info(await client.read_gatt_char(characteristic))
        first = page
        labels = list(page.info.labels)
        for _ in range(MAX_PAGES):
            if len(labels) >= page.label_count:
                break
            await client.write_gatt_char(characteristic, page_command(len(labels)), response=True)
            page = decode_model_info(await client.read_gatt_char(characteristic))
            if page.first_label != len(labels) or page.info.model_id != first.info.model_id or not page.info.labels:
                raise MalformedPacket(f"asked for labels from {len(labels)}, got a page from {page.first_label}")
            labels += page.info.labels
        if len(labels) != first.label_count:
            raise MalformedPacket(f"{len(labels)} labels read of the {first.label_count} announced")
        if page is not first:
            # The page is this connection's state on the device: a later read starts from the top again.
            await client.write_gatt_char(characteristic, page_command(0), response=True)
    except (BleakError, MalformedPacket) as exc:
        logger.warning("%s: its model info cannot be read: %s", client.address, exc)
        return None
    info = first.info
    return ModelInfo(info.model_id, info.name, info.version, tuple(labels), info.unit)
