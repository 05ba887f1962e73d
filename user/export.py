"""Export a training checkpoint as an inference-only submission bundle.

    from user.export import export_bundle
    from user.train_agent import load_agent
    export_bundle(Path("checkpoints/<run>/rl_model_<N>_steps.zip"), Path("submission"), load_agent=load_agent)

(or ``python user/train_agent.py --mode export --agent_path ... --out submission``).

The bundle folder holds

- ``my_agent.py``: a copy of ``user/submission_agent.py`` (numpy + torch only)
- ``policy_weights.pt``: a plain dict of the tensors the actor path needs (no value
  network, critic, optimizer or rollout state), saved with ``torch.save``
- ``agent_config.json``: the network sizes, the observation scale and the source checkpoint
- ``README.txt``: how to load it

and loads with ``from my_agent import SubmittedAgent; agent = SubmittedAgent()``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from environment.checkpoints import (
    MAX_JSON_BYTES,
    CheckpointError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    read_regular_file,
)
from environment.macros import MACRO_KEYS
from environment.self_play import snapshot_steps
from user import submission_agent as S
from user.agent_io import TransformerStrategyAgent, encoder_path_for, resolve_checkpoint

AGENT_FILE = "my_agent.py"
README_FILE = "README.txt"
BUNDLE_FILES = (S.CONFIG_FILE, S.WEIGHTS_FILE, AGENT_FILE, README_FILE)
# What a folder that holds a previous bundle may contain besides BUNDLE_FILES (importing my_agent.py there).
_ALLOWED_EXTRAS = ("__pycache__",)
_ACTIVATION_NAMES = {cls: name for name, cls in S.ACTIVATIONS.items()}
# The trainer's feature extractor of each agent type (by class name: the classes live in the training script).
_EXTRACTORS = {
    "transformer_strategy": ("StreamingConditionedExtractor", "TransformerConditionedExtractor"),
    "recurrent_ppo": ("ScaledObservation",),
    "ppo": ("ScaledObservation",),
}

README_TEXT = """\
Warehouse Brawl submission bundle (inference only)
===================================================

Exported from {checkpoint} ({agent_type}, {parameters:,} actor parameters).

Load it with only numpy and torch installed, from this folder:

    from my_agent import SubmittedAgent
    agent = SubmittedAgent()                 # or SubmittedAgent("path/to/this/folder")
    keys = agent.predict(obs)                # obs: 64 values -> 10 keys (0/1)
    agent.reset()                            # before the next match

predict_batch(obs[N, 64], episode_start[N], env_ids=None) plays many matches at once,
keeping each match's memory under its env id. Actions are deterministic and equal
the training checkpoint's. On a small or shared CPU, torch.set_num_threads(1) is
usually much faster than torch's default for one match.

Files: my_agent.py (the agent), policy_weights.pt (tensors only, read with
torch.load(weights_only=True)), agent_config.json (sizes, observation scale, source).
"""


class ExportError(CheckpointError):
    """The bundle cannot be written where asked, or the policy does not fit the standalone agent."""


def _module_state(prefix: str, module: nn.Module, out: dict[str, torch.Tensor]) -> None:
    for name, tensor in module.state_dict().items():
        # clone: a state-dict view would otherwise save its whole (possibly larger) storage
        out[f"{prefix}{name}"] = tensor.detach().to("cpu").clone().contiguous()


def actor_state(policy, agent_config: dict) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The standalone ActorPolicy spec and its tensors, renamed, from a trainer policy."""
    kind = agent_config["type"]
    if kind not in S.AGENT_TYPES:
        raise ExportError(f"agent type {kind!r} cannot be exported (known: {', '.join(S.AGENT_TYPES)})")
    activation = _ACTIVATION_NAMES.get(policy.activation_fn)
    if activation is None:
        raise ExportError(f"the policy's activation {policy.activation_fn.__name__} has no standalone equivalent")
    if getattr(policy, "squash_output", False) or getattr(policy, "use_sde", False):
        raise ExportError("policies with squashed output or gSDE cannot be exported")
    pi_layers = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    spec: dict[str, Any] = {
        "type": kind,
        "activation": activation,
        "action_repeat": int(agent_config["action_repeat"]),
        "policy_net": [layer.out_features for layer in pi_layers],
    }
    state: dict[str, torch.Tensor] = {}
    extractor = policy.pi_features_extractor
    if type(extractor).__name__ not in _EXTRACTORS[kind]:
        raise ExportError(f"expected a {' or '.join(_EXTRACTORS[kind])} extractor, found {type(extractor).__name__}")
    if kind == "transformer_strategy":
        spec.update({k: int(agent_config[k]) for k in ("latent_dim", "num_heads", "num_layers", "sequence_length")})
        _module_state("extractor.", extractor, state)
        if hasattr(extractor.encoder, "positions"):  # the full-window encoder's position codes
            state["extractor.encoder.positions"] = extractor.encoder.positions.detach().to("cpu").clone()
        else:
            spec.update(encoder="streaming", attention_window=int(agent_config["attention_window"]))
    lstm = getattr(policy, "lstm_actor", None)
    if kind != "ppo":
        spec.update(lstm_hidden_size=lstm.hidden_size, lstm_layers=lstm.num_layers)
        if lstm.bidirectional or lstm.proj_size or not lstm.bias or lstm.batch_first:
            raise ExportError("only a plain (unidirectional, biased, unprojected) LSTM can be exported")
        _module_state("lstm.", lstm, state)
    if agent_config.get("action_head", "keys") == "macro":  # the menu travels with the bundle
        spec["macro_keys"] = MACRO_KEYS.astype(int).tolist()
    _module_state("policy_net.", policy.mlp_extractor.policy_net, state)
    _module_state("action_net.", policy.action_net, state)
    return spec, state


def _scale_of(policy, agent_config: dict) -> list[float]:
    scale = policy.pi_features_extractor.scale.detach().to("cpu").numpy().astype(np.float32)
    if scale.shape != (S.OBS_SIZE,) or not np.isfinite(scale).all():
        raise ExportError(f"unexpected observation scale of shape {scale.shape}")
    return [float(v) for v in scale]  # float32 → float64 → JSON → float32 is exact


def _is_previous_bundle(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    if not names <= set(BUNDLE_FILES) | set(_ALLOWED_EXTRAS) or S.CONFIG_FILE not in names:
        return False
    try:
        config = json.loads(read_regular_file(folder / S.CONFIG_FILE, "bundle config", MAX_JSON_BYTES).decode("utf-8"))
    except (CheckpointError, UnicodeDecodeError, json.JSONDecodeError):  # a FIFO there is not a bundle either
        return False
    return isinstance(config, dict) and config.get("format") == S.BUNDLE_FORMAT


def _check_out_dir(out_dir: Path, checkpoint_zip: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    if out_dir.resolve() == checkpoint_zip.parent.resolve():
        raise ExportError(f"{out_dir} is the checkpoint's own folder; export into a separate folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not _is_previous_bundle(out_dir):
        raise ExportError(
            f"{out_dir} is not empty and does not hold a previous bundle (only {', '.join(BUNDLE_FILES)}); "
            "refusing to overwrite it: pick an empty or new folder"
        )


def checkpoint_files(checkpoint_zip: Path) -> list[Path]:
    """The checkpoint zip and the files saved beside it for the same step (encoder, resume state)."""
    stem = checkpoint_zip.name.removesuffix(".zip")
    beside = [encoder_path_for(checkpoint_zip)] + [
        checkpoint_zip.with_name(f"{stem}_state{ext}") for ext in (".npz", ".json")
    ]
    return [checkpoint_zip] + [p for p in beside if p.is_file()]


def export_bundle(
    checkpoint_zip: Path, out_dir: Path, *, load_agent: Callable[..., TransformerStrategyAgent], verify: bool = True
) -> dict[str, Any]:
    """Write the inference-only bundle of ``checkpoint_zip`` (or a run folder's newest) into ``out_dir``.

    ``load_agent`` is the training script's (it knows the network architecture).

    Every file is written atomically; ``agent_config.json`` comes last and records the weights'
    SHA-256, so an interrupted export is detected when the bundle is loaded. ``out_dir`` must be
    new, empty or hold a previous bundle.

    :returns: ``{"bundle_bytes", "checkpoint_bytes", "files": {name: bytes}, "out_dir", "checkpoint"}``;
        ``checkpoint_bytes`` counts the zip, the encoder ``.pth`` and the resume state beside it.
    """
    checkpoint_zip = resolve_checkpoint(checkpoint_zip, verify)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, checkpoint_zip)
    agent = load_agent(checkpoint_zip)  # on the CPU, in eval mode, weights only
    policy, agent_config = agent.policy, agent.agent_config
    spec, state = actor_state(policy, agent_config)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ExportError(f"{checkpoint_zip} holds non-finite weights ({', '.join(bad[:3])}); not exporting it")

    buffer = io.BytesIO()
    torch.save(state, buffer)
    weights = buffer.getvalue()
    config = {
        "format": S.BUNDLE_FORMAT,
        "format_version": S.BUNDLE_VERSION,
        "policy": spec,
        "observation_scale": _scale_of(policy, agent_config),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "parameters": sum(v.numel() for k, v in state.items() if not k.endswith("positions")),
        "source": {"checkpoint": checkpoint_zip.name, "steps": _steps(checkpoint_zip)},
        "training_agent_config": agent_config,
    }
    source_code = Path(S.__file__).read_bytes()
    readme = README_TEXT.format(
        checkpoint=checkpoint_zip.name, agent_type=spec["type"], parameters=config["parameters"]
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "__pycache__", ignore_errors=True)  # stale bytecode of a previous my_agent.py
    atomic_write_bytes(out_dir / AGENT_FILE, source_code)
    atomic_write_text(out_dir / README_FILE, readme)
    with atomic_path(out_dir / S.WEIGHTS_FILE) as tmp, open(tmp, "xb") as f:
        f.write(weights)
    atomic_write_text(out_dir / S.CONFIG_FILE, json.dumps(config, indent=2, default=list) + "\n")

    files = {name: (out_dir / name).stat().st_size for name in BUNDLE_FILES}
    return {
        "bundle_bytes": sum(files.values()),
        "checkpoint_bytes": sum(p.stat().st_size for p in checkpoint_files(checkpoint_zip)),
        "files": files,
        "out_dir": str(out_dir),
        "checkpoint": str(checkpoint_zip),
    }


def _steps(checkpoint_zip: Path) -> int | None:
    try:
        return snapshot_steps(checkpoint_zip)
    except ValueError:  # not named rl_model_<N>_steps.zip
        return None
