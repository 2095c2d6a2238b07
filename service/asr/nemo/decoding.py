"""Greedy decoders for NeMo's CTC, RNN-T and TDT heads, as plain functions over numpy arrays.

The transducer decoders take a `JointStep` callable (one prediction-network + joint evaluation),
so the search logic is independent of how that step is run (ONNX Runtime in production).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


def greedy_ctc(logprobs: np.ndarray, length: int, blank_id: int) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks. `logprobs` is [T, V]."""
    best = np.asarray(logprobs[:length]).argmax(axis=-1)
    tokens: list[int] = []
    previous = -1
    for token in best.tolist():
        if token != previous and token != blank_id:
            tokens.append(token)
        previous = token
    return tokens


@dataclass(frozen=True)
class PredictorState:
    """The prediction network's recurrent state after the last emitted token."""

    last_token: int
    states: tuple[np.ndarray, ...]


# (encoder frame [D], state) → (joint logits for that frame [V+1(+durations)], state after feeding last_token)
JointStep = Callable[[np.ndarray, PredictorState], tuple[np.ndarray, tuple[np.ndarray, ...]]]


def greedy_rnnt(
    encoded: np.ndarray,
    length: int,
    step: JointStep,
    start: PredictorState,
    blank_id: int,
    max_symbols: int,
) -> list[int]:
    """Frame by frame: emit argmax tokens until blank or `max_symbols`; the state moves only on tokens.

    `encoded` is [T, D]; `start.last_token` is the blank (NeMo's start-of-sequence).
    """
    tokens: list[int] = []
    state = start
    for t in range(length):
        frame = encoded[t]
        for _ in range(max_symbols):
            logits, next_states = step(frame, state)
            token = int(np.argmax(logits[: blank_id + 1]))
            if token == blank_id:
                break
            tokens.append(token)
            state = PredictorState(token, next_states)
    return tokens


def greedy_tdt(
    encoded: np.ndarray,
    length: int,
    step: JointStep,
    start: PredictorState,
    blank_id: int,
    durations: Sequence[int],
    max_symbols: int,
) -> list[int]:
    """Token-and-duration transducer, label by label (NeMo's label-looping order).

    Each step picks a token (the joint's first V+1 logits) and a jump (its last `len(durations)`
    logits); a blank never stays on its frame (jump 0 counts as 1), and after `max_symbols`
    tokens on one frame the search moves one frame on.
    """
    n_dur = len(durations)

    def pick(t: int, state: PredictorState) -> tuple[int, int, tuple[np.ndarray, ...]]:
        logits, next_states = step(encoded[t], state)
        token = int(np.argmax(logits[:-n_dur]))
        jump = int(durations[int(np.argmax(logits[-n_dur:]))])
        if token == blank_id and jump == 0:
            jump = 1
        return token, jump, next_states

    tokens: list[int] = []
    state = start
    t = 0
    last_frame, on_last_frame = -1, 0
    while t < length:
        token, jump, next_states = pick(t, state)
        frame = t
        t += jump
        while token == blank_id and t < length:
            frame = t
            token, jump, next_states = pick(t, state)
            t += jump
        if token == blank_id:
            break
        tokens.append(token)
        state = PredictorState(token, next_states)
        on_last_frame = on_last_frame + 1 if frame == last_frame else 1
        last_frame = frame
        if on_last_frame >= max_symbols and frame == t:
            t += 1
    return tokens
