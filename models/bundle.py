"""The saved model: a folder with safetensors weights, the model config and the event encoder as JSON.

Nothing in it is pickled, so loading never runs code from the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file as load_arrays, save_file as save_arrays
from safetensors.torch import load_file, save_file

from models.encoding import EventEncoder
from models.network import LEGACY_ARCHITECTURE, ModelConfig, SessionSignalsModel

WEIGHTS = "model.safetensors"
CONFIG = "model_config.json"
ENCODER = "encoder.json"
META = "meta.json"
LIST_ARRAYS = "lists.safetensors"
"""Optional: the tables of the endpoint's lists by purpose (training/list_tables.py); older bundles lack it."""


def save_bundle(path: str | Path, model: SessionSignalsModel, encoder: EventEncoder, meta: dict[str, Any],
                arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write the bundle; `meta` carries what serving needs beside the weights (base rates, popularity, ...),
    `arrays` the lists' tables (complements, prices: too large for JSON)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS))
    (path / CONFIG).write_text(json.dumps(model.cfg.to_dict(), indent=2))
    (path / ENCODER).write_text(json.dumps(encoder.to_dict()))
    (path / META).write_text(json.dumps(meta, indent=2))
    if arrays:
        save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path / LIST_ARRAYS))
    return path


def load_bundle(path: str | Path) -> tuple[SessionSignalsModel, EventEncoder, dict[str, Any]]:
    path = Path(path)
    missing = [name for name in (WEIGHTS, CONFIG, ENCODER, META) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not a session-signals bundle: missing {', '.join(missing)}")
    model = SessionSignalsModel(ModelConfig(**{**LEGACY_ARCHITECTURE, **json.loads((path / CONFIG).read_text())}))
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    model.eval()
    encoder = EventEncoder.from_dict(json.loads((path / ENCODER).read_text()))
    return model, encoder, json.loads((path / META).read_text())


def load_list_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The bundle's list tables by name; {} for a bundle saved without them."""
    file = Path(path) / LIST_ARRAYS
    return load_arrays(str(file)) if file.is_file() else {}
