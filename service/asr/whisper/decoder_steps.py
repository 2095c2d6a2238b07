"""How an encoder-decoder's steps run on ONNX Runtime: plain (numpy in, numpy out) or I/O-bound.

Whisper's decoder step takes the self-attention cache of the previous step and returns it grown
by one position. `PlainSteps` hands those tensors back and forth as numpy arrays: on the CPU that
is free, but on a GPU every token would copy the whole cache (and the encoder's cross-attention
keys/values) to the host and back. `BoundSteps` uses ONNX Runtime's I/O binding instead: the
encoder's outputs and each step's cache stay as OrtValues on the session's device and are bound
straight into the next step; only the token (in) and the logits (out) cross to the host.

Both give the same logits; `steps_for(provider, ...)` picks BoundSteps for the CUDA provider.
I/O binding also runs on the CPU provider, which is how the bound path is tested without a GPU.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

CUDA = "CUDAExecutionProvider"


class PlainSteps:
    """Numpy feeds; the cache comes back as numpy and goes in again."""

    bound = False

    def __init__(self, encoder: Any, decoder: Any, cross_names: Sequence[str], self_names: Sequence[str]) -> None:
        self._encoder, self._decoder = encoder, decoder
        self._cross_names, self._self_names = list(cross_names), list(self_names)
        self._feeds: dict[str, Any] = {}
        self.state_names: list[str] = []
        """Extra encoder outputs to fetch with each `encode` (hidden states an emotion head reads)."""
        self.states: dict[str, np.ndarray] = {}
        """The last `encode`'s `state_names` outputs, as numpy arrays."""

    def encode(self, mel: np.ndarray, run_options: ort.RunOptions | None = None) -> None:
        outputs = self._encoder.run(self._cross_names + self.state_names, {"mel": mel}, run_options)
        n = len(self._cross_names)
        self._feeds = dict(zip(self._cross_names, outputs[:n]))
        self.states = dict(zip(self.state_names, outputs[n:]))

    def first(self, tokens: np.ndarray, empty_cache: dict[str, np.ndarray], run_options: ort.RunOptions | None = None) -> np.ndarray:
        self._feeds.update(empty_cache)
        return self._run(tokens, run_options)

    def next(self, tokens: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        return self._run(tokens, run_options)

    def _run(self, tokens: np.ndarray, run_options: ort.RunOptions | None) -> np.ndarray:
        self._feeds["tokens"] = tokens
        logits, *cache = self._decoder.run(None, self._feeds, run_options)
        self._feeds.update(zip(self._self_names, cache))
        return logits


class BoundSteps:
    """I/O binding: cross keys/values and the self-attention cache never leave `device`."""

    bound = True

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        cross_names: Sequence[str],
        self_names: Sequence[str],
        device: str = "cuda",
        device_id: int = 0,
    ) -> None:
        self._encoder, self._decoder = encoder, decoder
        self._cross_names, self._self_names = list(cross_names), list(self_names)
        outputs = [o.name for o in decoder.get_outputs()]
        self._logits_name, self._present_names = outputs[0], outputs[1:]
        if len(self._present_names) != len(self._self_names):
            raise ValueError(f"decoder has {len(self._present_names)} cache outputs for {len(self._self_names)} cache inputs")
        self._device, self._device_id = device, device_id
        self._enc_binding = encoder.io_binding()
        self._binding = decoder.io_binding()
        self.state_names: list[str] = []
        self.states: dict[str, np.ndarray] = {}

    def encode(self, mel: np.ndarray, run_options: ort.RunOptions | None = None) -> None:
        b = self._enc_binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        b.bind_cpu_input("mel", mel)
        for name in self._cross_names:
            b.bind_output(name, self._device, self._device_id)
        for name in self.state_names:  # read on the host by the emotion head
            b.bind_output(name, "cpu")
        self._encoder.run_with_iobinding(b, run_options)
        b.synchronize_outputs()
        outputs = b.get_outputs()
        n = len(self._cross_names)
        cross = outputs[:n]
        self.states = {name: value.numpy() for name, value in zip(self.state_names, outputs[n:])}
        self._binding.clear_binding_inputs()
        for name, value in zip(self._cross_names, cross):
            self._binding.bind_ortvalue_input(name, value)

    def first(self, tokens: np.ndarray, empty_cache: dict[str, np.ndarray], run_options: ort.RunOptions | None = None) -> np.ndarray:
        for name, value in empty_cache.items():
            self._binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, self._device, self._device_id))
        return self._run(tokens, run_options)

    def next(self, tokens: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        return self._run(tokens, run_options)

    def _run(self, tokens: np.ndarray, run_options: ort.RunOptions | None) -> np.ndarray:
        b = self._binding
        b.bind_cpu_input("tokens", tokens)
        # Fresh outputs every step: the previous step's cache is this step's input, so ORT must not
        # write the new cache into the same buffers.
        b.clear_binding_outputs()
        b.bind_output(self._logits_name, "cpu")
        for name in self._present_names:
            b.bind_output(name, self._device, self._device_id)
        self._decoder.run_with_iobinding(b, run_options)
        b.synchronize_outputs()
        logits, *cache = b.get_outputs()
        for name, value in zip(self._self_names, cache):
            b.bind_ortvalue_input(name, value)
        return logits.numpy()


def steps_for(
    provider: str,
    encoder: Any,
    decoder: Any,
    cross_names: Sequence[str],
    self_names: Sequence[str],
    io_binding: bool | None = None,
) -> PlainSteps | BoundSteps:
    """BoundSteps on CUDA (or when `io_binding` is True), else PlainSteps."""
    use_binding = provider == CUDA if io_binding is None else io_binding
    if not use_binding:
        return PlainSteps(encoder, decoder, cross_names, self_names)
    return BoundSteps(encoder, decoder, cross_names, self_names, "cuda" if provider == CUDA else "cpu")
