"""The one place that decides which ONNX Runtime execution provider runs each model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import onnxruntime as ort

from subtone.service.errors import SubtoneError

log = logging.getLogger(__name__)

PROVIDER_NAMES = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


@dataclass(frozen=True)
class SessionInfo:
    """What a session runs on, and why it is not on the first choice."""

    provider: str
    fallback_reason: str = ""


def resolve_providers(preference: Sequence[str]) -> tuple[list[str], str]:
    """Providers to request (in order) and, when a preferred one is missing, why."""
    available = set(ort.get_available_providers())
    chosen: list[str] = []
    reasons: list[str] = []
    for short in preference:
        name = PROVIDER_NAMES[short]
        if name in available:
            chosen.append(name)
        else:
            reasons.append(f"{short} not available in this onnxruntime build (install subtone[gpu] for cuda)")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen, "; ".join(reasons)


def create_session(
    path: Path,
    preference: Sequence[str] = ("cuda", "cpu"),
    threads: int = 0,
    label: str = "",
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Open `path` on the first provider that works; log which one runs it."""
    path = Path(path)
    label = label or path.name
    if not path.is_file():
        raise SubtoneError(f"model file not found: {path} (expected an ONNX file; run `subtone export …` to make it)")
    providers, reason = resolve_providers(preference)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # ORT raises several types; all mean the same to a user
        if providers[0] != "CPUExecutionProvider" and _looks_like_provider_failure(exc):
            reason = f"{providers[0]} failed to start ({_first_line(exc)})"
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        else:
            raise SubtoneError(
                f"model file {path} could not be loaded by ONNX Runtime: {_first_line(exc)} "
                "(expected a valid ONNX model; re-export it with `subtone export …`)"
            ) from None
    active = session.get_providers()[0]
    if active != providers[0] and not reason:
        reason = f"{providers[0]} could not be initialised (missing CUDA/cuDNN libraries?)"
    info = SessionInfo(provider=active, fallback_reason=reason)
    if reason and "cuda" in preference:
        log.info("%s runs on %s (%s)", label, active, reason)
    else:
        log.info("%s runs on %s", label, active)
    return session, info


def _looks_like_provider_failure(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("cuda", "cudnn", "cublas", "provider"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
