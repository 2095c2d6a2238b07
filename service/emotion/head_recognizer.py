"""Speech emotion from Whisper encoder states: a small ONNX head, adapted to each source's voice.

Two paths to the states, the same numbers: when the speech model is the Whisper the head was
trained on, its recognizer returns the states it computed for the transcript anyway
(`Transcript.encoder_states`: one encoder pass per utterance); otherwise this recognizer runs
that Whisper's encoder itself on the same trimmed window.

Each audio source (microphone, system) has its own SessionAdaptation: an utterance is judged with
the statistics of what that source said before it, and only finished utterances are added
(partials are the same speech again).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Mapping

import numpy as np

from subtone.config import Settings
from subtone.service.emotion.adaptation import AdaptationParams, FeatureStats, SessionAdaptation
from subtone.service.emotion.encoder_features import pooled_features, run_encoder
from subtone.service.emotion.recognizer import EmotionResult, too_little_signal
from subtone.service.errors import SubtoneError
from subtone.service.events import EMOTIONS, MICROPHONE
from subtone.service.models.onnx_session import SessionInfo, create_session
from subtone.service.models.registry import ModelEntry

log = logging.getLogger(__name__)

def read_prior(path: Path) -> FeatureStats:
    try:
        with np.load(path) as z:
            return FeatureStats(z["mean"].astype(np.float32), z["std"].astype(np.float32))
    except (OSError, KeyError, ValueError) as exc:
        raise SubtoneError(f"{path}: not a feature prior (expected an .npz with 'mean' and 'std': {exc})") from None


class HeadEmotionRecognizer:
    """classify(audio, encoder_states=…, source=…, final=…) → EmotionResult with `uncertain` and
    `intensity`; None when the audio is too short or quiet to judge."""

    def __init__(self, name: str, head, session_info: SessionInfo, prior: FeatureStats, state_names: tuple[str, ...],
                 min_confidence: float, params: AdaptationParams = AdaptationParams()) -> None:
        self.name = name
        self.session = head
        self.session_info = session_info
        self.labels = EMOTIONS
        self.state_names = state_names
        self.min_confidence = min_confidence
        self._prior, self._params = prior, params
        self._sessions: dict[str, SessionAdaptation] = {}
        self._lock = threading.Lock()  # finals of two sources may be judged on two threads
        self._encoder = None
        self.shares_encoder = False
        """True when the states come with the recognizer's transcripts (no encoder run here)."""

    @classmethod
    def from_entry(cls, entry: ModelEntry, settings: Settings, transcriber=None) -> "HeadEmotionRecognizer":
        from subtone.service.models.registry import load_model

        names = tuple(entry.info.get("encoder_outputs", ()))
        if tuple(entry.info.get("labels", ())) != EMOTIONS or not names:
            raise SubtoneError(f"model '{entry.name}' lacks labels {list(EMOTIONS)} or encoder_outputs; re-export it")
        head, info = create_session(entry.path("head"), settings.runtime.providers, settings.runtime.threads, label=entry.name)
        ours = cls(entry.name, head, info, read_prior(entry.path("prior")), names, settings.emotion.min_confidence)
        if not ours._share(transcriber, entry.info.get("shares_encoder_with", ())):
            encoder_model = str(entry.info.get("encoder_model", ""))
            try:
                encoder_entry = load_model(settings.models_dir(), encoder_model)
            except SubtoneError as exc:
                raise SubtoneError(f"model '{entry.name}' reads the encoder of '{encoder_model}': {exc}") from None
            ours._encoder, _ = create_session(encoder_entry.path("encoder"), settings.runtime.providers,
                                              settings.runtime.threads, label=f"{entry.name} encoder")
        log.info("emotion %s: %s", entry.name, "shares the speech model's encoder" if ours.shares_encoder
                 else f"runs its own encoder ({entry.info.get('encoder_model')})")
        return ours

    def _share(self, transcriber, partners) -> bool:
        keep = getattr(transcriber, "keep_encoder_states", None)
        if keep is None or getattr(transcriber, "name", None) not in partners:
            return False
        if not getattr(getattr(transcriber, "options", None), "normalize_level", False):
            # The head was trained on states of level-normalised audio.
            log.info("%s: the speech model does not normalise the level ([asr.whisper] normalize_level); "
                     "emotion runs its own encoder", self.name)
            return False
        try:
            keep(self.state_names)
        except SubtoneError as exc:  # an export from before the states outputs: run our own encoder
            log.warning("%s", exc)
            return False
        self.shares_encoder = True
        return True

    def adaptation(self, source: str) -> SessionAdaptation:
        with self._lock:
            if source not in self._sessions:
                self._sessions[source] = SessionAdaptation(self._prior, self._params)
            return self._sessions[source]

    def reset_sessions(self) -> None:
        """Forget every source's voice (a new conversation)."""
        with self._lock:
            self._sessions.clear()

    def encoder_states(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Our own encoder's states for `audio` (what `features` computes when none are given)."""
        if self._encoder is None:
            raise SubtoneError(f"{self.name}: no encoder states came with the transcript and no encoder is loaded")
        return run_encoder(self._encoder, self.state_names, np.asarray(audio, dtype=np.float32).reshape(-1))

    def features(self, audio: np.ndarray, encoder_states: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The pooled feature vector of one utterance, from the given states or our own encoder."""
        states = encoder_states if encoder_states and all(n in encoder_states for n in self.state_names) else None
        if states is None:
            states = self.encoder_states(audio)
        return pooled_features(states, self.state_names, audio)

    def classify(self, audio16k: np.ndarray, *, encoder_states: Mapping[str, np.ndarray] | None = None,
                 source: str = MICROPHONE, final: bool = True) -> EmotionResult | None:
        audio = np.nan_to_num(np.asarray(audio16k, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        if too_little_signal(audio):
            return None
        try:
            x = self.features(audio, encoder_states)
            voice = self.adaptation(source)
            with self._lock:
                stats = voice.stats()
                if final:
                    voice.observe(x)
            z = ((x - stats.mean) / stats.std).astype(np.float32)[None, :]
            probs, strong = self.session.run(None, {"features": z})
        except Exception as exc:  # ORT raises several types; a caption without emotion beats a crash
            log.warning("emotion model %s failed on a %.2f s utterance: %s", self.name, audio.size / 16_000, exc)
            return None
        p = probs[0].astype(float)
        label = EMOTIONS[int(np.argmax(p))]
        return EmotionResult(label=label, scores=dict(zip(EMOTIONS, p)), intensity=float(strong[0]),
                             uncertain=bool(p.max() < self.min_confidence))
