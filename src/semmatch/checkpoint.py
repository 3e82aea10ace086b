"""Per-epoch training checkpoints for `semmatch train --resume`.

A checkpoint directory contains the weights, the optimizer state, the moving average of the weights
when training keeps one (`ema.safetensors`), and `state.json` with the history,
early-stopping counters and NumPy RNG state, plus one `rng_rank{N}.safetensors` per process
with its PyTorch RNG state. Everything is safetensors or JSON, so nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from semmatch.errors import ModelFileError

CHECKPOINT_DIR = "checkpoint"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-ready values."""
    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], document: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in document["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": document["param_groups"]})


def _cpu_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                    ema: torch.nn.Module | None = None) -> None:
    """Write weights, optimizer state, the EMA if any and `state` (JSON-ready) into `directory` (an atomic_directory)."""
    save_file(_cpu_weights(model), str(directory / "model.safetensors"))
    if ema is not None:
        save_file(_cpu_weights(ema), str(directory / "ema.safetensors"))
    tensors, document = optimizer_tensors(optimizer)
    save_file(tensors, str(directory / "optimizer.safetensors"))
    (directory / "state.json").write_text(json.dumps({**state, "optimizer": document}, indent=1), encoding="utf-8")


def save_rng_state(directory: Path, rank: int) -> None:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    save_file(states, str(directory / f"rng_rank{rank}.safetensors"))


def load_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rank: int,
                    ema: torch.nn.Module | None = None) -> dict:
    """Restore weights, optimizer, the EMA if any and this rank's RNG state; returns the saved state dict."""
    state_path = directory / "state.json"
    if not state_path.is_file():
        raise ModelFileError(f"no checkpoint to resume from: {state_path} is missing "
                             "(a run writes it after its first completed epoch)")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        if ema is not None:
            ema.load_state_dict(load_file(str(directory / "ema.safetensors")))
        optimizer_state = load_file(str(directory / "optimizer.safetensors"))
        device = next(model.parameters()).device
        restore_optimizer(optimizer, {k: v.to(device) for k, v in optimizer_state.items()}, state.pop("optimizer"))
        rng_path = directory / f"rng_rank{rank}.safetensors"
        if rng_path.is_file():
            rng = load_file(str(rng_path))
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng["cuda"])
    except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"corrupt checkpoint in {directory}: {error}") from error
    return state
