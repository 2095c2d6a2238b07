"""NeMo CTC, RNN-T and TDT models on ONNX Runtime: log-mel graph → acoustic graph(s) → greedy search → text.

One recognizer class; the family decides the search strategy. No torch and no NeMo here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import onnxruntime as ort

from subtone.config import Settings
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import ModelEntry
from subtone.service.asr.nemo.decoding import PredictorState, greedy_ctc, greedy_rnnt, greedy_tdt
from subtone.service.asr.nemo.tokenizer import Detokenizer, load_detokenizer
from subtone.service.models.onnx_session import SessionInfo, create_session
from subtone.service.asr.recognizer import CancelToken, DecodeCancelled, RecognizerCapabilities, Transcript

MIN_SAMPLES = 1600
"""Shorter audio (under 0.1 s) is zero-padded: the front end needs a few frames."""


def encoded_length(frames: int, subsampling: Mapping[str, Any] | None) -> int | None:
    """NeMo's calc_length: frames after the encoder's strided convolutions; None when unknown."""
    if not subsampling:
        return None
    length = float(frames)
    add_pad = subsampling["all_paddings"] - subsampling["kernel_size"]
    for _ in range(int(subsampling["repeat"])):
        length = (length + add_pad) / subsampling["stride"] + 1.0
        length = math.ceil(length) if subsampling["ceil_mode"] else math.floor(length)
    return int(length)


class SearchStrategy(Protocol):
    def decode(self, features: np.ndarray, n_frames: int) -> list[int]:
        """Token IDs (no blanks) for log-mel `features` [1, F, T] with `n_frames` valid frames."""
        ...


@dataclass(frozen=True)
class CtcSearch:
    model: ort.InferenceSession
    blank_id: int
    subsampling: Mapping[str, Any] | None

    def decode(self, features: np.ndarray, n_frames: int) -> list[int]:
        (logprobs,) = self.model.run(
            ["logprobs"], {"audio_signal": features, "length": np.array([n_frames], dtype=np.int64)}
        )
        length = encoded_length(n_frames, self.subsampling) or logprobs.shape[1]
        return greedy_ctc(logprobs[0], min(length, logprobs.shape[1]), self.blank_id)


class TransducerSearch:
    """RNN-T or TDT: the encoder once, then one decoder_joint call per search step."""

    def __init__(
        self,
        encoder: ort.InferenceSession,
        decoder_joint: ort.InferenceSession,
        blank_id: int,
        max_symbols: int,
        durations: Sequence[int] = (),
    ) -> None:
        self.encoder = encoder
        self.decoder_joint = decoder_joint
        self.blank_id = blank_id
        self.max_symbols = max_symbols
        self.durations = tuple(durations)
        self._state_names = [i.name for i in decoder_joint.get_inputs() if i.name.startswith("input_states")]
        self._state_shapes = [self._fixed_shape(i.shape) for i in decoder_joint.get_inputs() if i.name in self._state_names]
        self._outputs = ["outputs"] + [n.replace("input_", "output_") for n in self._state_names]
        self._target_length = np.ones(1, dtype=np.int32)

    @staticmethod
    def _fixed_shape(shape: Sequence[Any]) -> tuple[int, ...]:
        # [layers, batch, hidden]; the batch axis is symbolic in the graph
        return tuple(d if isinstance(d, int) else 1 for d in shape)

    def start_state(self) -> PredictorState:
        return PredictorState(self.blank_id, tuple(np.zeros(s, dtype=np.float32) for s in self._state_shapes))

    def _step(self, frame: np.ndarray, state: PredictorState) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        feeds = {
            "encoder_outputs": frame.reshape(1, -1, 1),
            "targets": np.array([[state.last_token]], dtype=np.int32),
            "target_length": self._target_length,
        }
        feeds.update(zip(self._state_names, state.states))
        logits, *states = self.decoder_joint.run(self._outputs, feeds)
        return logits.reshape(-1), tuple(states)

    def decode(self, features: np.ndarray, n_frames: int) -> list[int]:
        encoded, lengths = self.encoder.run(
            ["outputs", "encoded_lengths"], {"audio_signal": features, "length": np.array([n_frames], dtype=np.int64)}
        )
        frames = np.ascontiguousarray(encoded[0].T)  # [T', D]
        length = min(int(lengths[0]), frames.shape[0])
        if self.durations:
            return greedy_tdt(
                frames, length, self._step, self.start_state(), self.blank_id, self.durations, self.max_symbols
            )
        return greedy_rnnt(frames, length, self._step, self.start_state(), self.blank_id, self.max_symbols)


class NemoRecognizer:
    """A NeMo model exported by `subtone export nemo`."""

    capabilities = RecognizerCapabilities(cancellable=False)

    def __init__(
        self,
        name: str,
        preprocessor: ort.InferenceSession,
        search: SearchStrategy,
        detokenizer: Detokenizer,
        session_info: SessionInfo,
        language: str = "und",
        pad_to: int = 0,
        pad_value: float = 0.0,
    ) -> None:
        self.name = name
        self.pad_to = pad_to
        self.pad_value = pad_value
        self.preprocessor = preprocessor
        self.search = search
        self.detokenizer = detokenizer
        self.session_info = session_info
        self.language = language

    @classmethod
    def from_entry(cls, entry: ModelEntry, settings: Settings) -> "NemoRecognizer":
        info = entry.info
        fix = f"re-export it with `{entry.export_command or 'subtone export nemo --checkpoint FILE.nemo'}`"
        try:
            blank_id = int(info["blank_id"])
            tokenizer_kind = str(info["tokenizer"])
        except (KeyError, TypeError, ValueError):
            raise SubtoneError(f"manifest entry '{entry.name}' lacks NeMo fields (blank_id, tokenizer); {fix}") from None
        providers, threads = settings.runtime.providers, settings.runtime.threads

        def session(role: str) -> tuple[ort.InferenceSession, SessionInfo]:
            if role not in entry.files:
                raise SubtoneError(f"manifest entry '{entry.name}' ({entry.family}) has no '{role}' file; {fix}")
            return create_session(entry.path(role), providers, threads, f"{entry.name} {role}")

        preprocessor, _ = session("preprocessor")
        search: SearchStrategy
        if entry.family == "nemo-ctc":
            model, session_info = session("model")
            search = CtcSearch(model, blank_id, info.get("subsampling"))
        elif entry.family in ("nemo-rnnt", "nemo-tdt"):
            encoder, session_info = session("encoder")
            decoder_joint, _ = session("decoder_joint")
            durations = [int(d) for d in info.get("durations", [])] if entry.family == "nemo-tdt" else []
            if entry.family == "nemo-tdt" and not durations:
                raise SubtoneError(f"manifest entry '{entry.name}' is a TDT model without durations; {fix}")
            search = TransducerSearch(encoder, decoder_joint, blank_id, int(info.get("max_symbols", 10)), durations)
        else:
            raise SubtoneError(f"model '{entry.name}' has family '{entry.family}', not a NeMo family")
        if "tokenizer" not in entry.files:
            raise SubtoneError(f"manifest entry '{entry.name}' has no tokenizer file; {fix}")
        detokenizer = load_detokenizer(tokenizer_kind, entry.path("tokenizer"))
        return cls(
            entry.name,
            preprocessor,
            search,
            detokenizer,
            session_info,
            language=str(info.get("language", "und")),
            pad_to=int(info.get("pad_to", 0)),
            pad_value=float(info.get("pad_value", 0.0)),
        )

    def features(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        """Log-mel features [1, F, T] and the number of valid frames, from the exported front end."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        n = audio.size
        if n < MIN_SAMPLES:
            audio = np.concatenate([audio, np.zeros(MIN_SAMPLES - n, dtype=np.float32)])
        features, length = self.preprocessor.run(
            ["features", "features_length"], {"waveform": audio[None], "length": np.array([audio.size], dtype=np.int64)}
        )
        short = features.shape[-1] % self.pad_to if self.pad_to > 0 else 0
        if short:
            # NeMo pads the frames to a multiple of pad_to after normalising; the encoder masks them
            pad = np.full((*features.shape[:-1], self.pad_to - short), self.pad_value, dtype=features.dtype)
            features = np.concatenate([features, pad], axis=-1)
        return features, int(length[0])

    def token_ids(self, audio: np.ndarray) -> list[int]:
        features, n_frames = self.features(audio)
        return self.search.decode(features, n_frames)

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, cancel: CancelToken | None = None) -> Transcript:
        """16 kHz mono float32 in, text out (empty for empty audio); see SpeechRecognizer.

        Greedy CTC/transducer search cannot loop, so partials decode like finals. Not cancellable
        mid-decode: a cancelled decode finishes, then raises DecodeCancelled.
        """
        if np.asarray(audio).size == 0:
            return Transcript(text="", tokens=())
        tokens = self.token_ids(audio)
        if cancel is not None and cancel.cancelled:
            raise DecodeCancelled(self.name)
        text = self.detokenizer.decode(tokens).strip()
        known = self.language if self.language != "und" and text else ""
        return Transcript(text=text, tokens=tuple(tokens), language=known, language_prob=1.0 if known else 0.0)
