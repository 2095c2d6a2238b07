"""The worker's scheduling policy, pure: no threads, no model. Audio is scripted (tests/fakes.py)."""

from __future__ import annotations

import numpy as np

from fakes import speech, words_in
from subtone.service.audio import SAMPLE_RATE
from subtone.service.captioning.partials import PartialPolicy
from subtone.service.captioning.policy import (
    MAX_MERGED_S,
    DecodeFinal,
    DecodePartial,
    Finish,
    PostCaptions,
    SchedulingPolicy,
)
from subtone.service.events import TOO_SHORT, UtteranceAudio, UtteranceEnded, UtteranceStarted

PARTIALS = PartialPolicy(interval_s=0.5, min_audio_s=1.0)


def start(policy: SchedulingPolicy, uid: int, audio: np.ndarray | None = None, source: str = "microphone") -> None:
    policy.accept(UtteranceStarted(uid, float(uid), "voice", source))
    if audio is not None:
        policy.accept(UtteranceAudio(uid, audio))


def end(policy: SchedulingPolicy, uid: int, reason: str = "silence") -> bool:
    return policy.accept(UtteranceEnded(uid, uid + 1.0, reason))


def utterance(policy: SchedulingPolicy, uid: int, seconds: float = 1.0, source: str = "microphone") -> bool:
    start(policy, uid, speech(uid, seconds), source)
    return end(policy, uid)


def drain(policy: SchedulingPolicy) -> list:
    jobs = []
    while (job := policy.next_job()) is not None and not isinstance(job, Finish):
        jobs.append(job)
    return jobs


def test_an_ended_utterance_is_decoded_as_a_final():
    policy = SchedulingPolicy()
    assert policy.next_job() is None  # nothing to do: wait
    utterance(policy, 1)
    job = policy.next_job()
    assert isinstance(job, DecodeFinal) and words_in(job.stream.audio()) == ["w1"]
    assert job.stream.t_end == 2.0 and job.stream.reason == "silence"


def test_a_final_preempts_the_partial_in_flight():
    policy = SchedulingPolicy(partials=PARTIALS)
    start(policy, 1, speech(1, 1.2))
    partial = policy.next_job()
    assert isinstance(partial, DecodePartial) and partial.audio.size == int(1.2 * SAMPLE_RATE)
    assert end(policy, 1) is True  # the worker cancels the partial decode
    assert isinstance(policy.next_job(), DecodeFinal)
    assert policy.partial_shown(partial.stream) is False  # it ended meanwhile: no partial posted


def test_audio_without_an_end_asks_for_no_cancel_and_no_partial_waits_behind_a_final():
    policy = SchedulingPolicy(partials=PARTIALS)
    start(policy, 2, speech(2, 2.0))
    assert policy.accept(UtteranceAudio(2, speech(2, 0.5))) is False
    utterance(policy, 1)
    assert isinstance(policy.next_job(), DecodeFinal)  # the final goes first …
    assert isinstance(policy.next_job(), DecodePartial)  # … then the open utterance's partial


def test_partials_are_skipped_not_queued_when_the_recognizer_lags():
    policy = SchedulingPolicy(partials=PARTIALS)
    start(policy, 1)
    first = None
    for _ in range(10):  # 3 s of audio arrive while the first partial decode is still running
        policy.accept(UtteranceAudio(1, speech(1, 0.3)))
        first = first or policy.next_job()
    assert isinstance(first, DecodePartial) and first.audio.size == int(1.2 * SAMPLE_RATE)
    second = policy.next_job()
    assert isinstance(second, DecodePartial) and second.audio.size == 3 * SAMPLE_RATE  # all of it, once
    assert policy.next_job() is None


def test_the_newest_open_utterance_gets_the_partial():
    policy = SchedulingPolicy(partials=PARTIALS)
    start(policy, 1, speech(1, 2.0), source="microphone")
    start(policy, 2, speech(2, 2.0), source="system")
    job = policy.next_job()
    assert isinstance(job, DecodePartial) and job.stream.utterance_id == 2


def test_no_final_is_ever_dropped_when_the_recognizer_falls_behind():
    skipped: dict[int, str] = {}
    policy = SchedulingPolicy(max_pending=2, on_skip=lambda uid, why: skipped.setdefault(uid, why))
    for uid in range(1, 11):  # ten utterances end while the worker decodes nothing
        utterance(policy, uid)
    jobs = drain(policy)
    heard = [w for job in jobs for w in words_in(job.stream.audio())]
    assert heard == [f"w{uid}" for uid in range(1, 11)]  # every word once, in order
    assert len(jobs) <= 3 and policy.merged == 10 - len(jobs)
    assert set(skipped.values()) == {"merged"} and len(skipped) == policy.merged


def test_utterances_too_long_to_merge_wait_instead_of_being_dropped():
    policy = SchedulingPolicy(max_pending=1)
    long = MAX_MERGED_S * 0.6
    for uid in (1, 2, 3):
        utterance(policy, uid, seconds=long)
    jobs = drain(policy)
    assert [job.stream.utterance_id for job in jobs] == [1, 2, 3] and policy.merged == 0


def test_utterances_of_different_sources_are_not_merged():
    policy = SchedulingPolicy(max_pending=1)
    utterance(policy, 1, source="microphone")
    utterance(policy, 2, source="system")
    utterance(policy, 3, source="system")
    assert [words_in(j.stream.audio()) for j in drain(policy)] == [["w1"], ["w2", "w3"]]


def test_a_merged_utterance_that_showed_a_partial_gets_an_empty_final():
    policy = SchedulingPolicy(max_pending=1, partials=PARTIALS)
    utterance(policy, 1)
    start(policy, 2, speech(2, 1.5))
    assert isinstance(policy.next_job(), DecodeFinal)  # 1 is being decoded
    partial = policy.next_job()
    assert isinstance(partial, DecodePartial) and policy.partial_shown(partial.stream)
    utterance(policy, 3)
    end(policy, 2)  # waiting: 3, 2
    utterance(policy, 4)  # backlog: 3 absorbs 2 (whose partial line must go), then 4
    settle, *finals = drain(policy)
    assert isinstance(settle, PostCaptions)
    assert [(c.utterance_id, c.text, c.is_final) for c in settle.captions] == [(2, "", True)]
    assert [words_in(j.stream.audio()) for j in finals] == [["w3", "w2", "w4"]]


def test_a_blip_is_discarded_and_takes_a_shown_partial_off_the_screen():
    skipped = []
    policy = SchedulingPolicy(partials=PARTIALS, on_skip=lambda uid, why: skipped.append((uid, why)))
    start(policy, 1, speech(1, 1.5))
    partial = policy.next_job()
    assert policy.partial_shown(partial.stream)
    assert end(policy, 1, TOO_SHORT) is False
    job = policy.next_job()
    assert isinstance(job, PostCaptions)
    (caption,) = job.captions
    assert caption.is_final and caption.text == "" and caption.utterance_id == 1
    assert skipped == [(1, "discarded")] and policy.discarded == 1
    start(policy, 2, speech(2, 0.2))
    end(policy, 2, TOO_SHORT)
    assert policy.next_job() is None  # no partial was shown: nothing to take back


def test_stop_finishes_waiting_finals_and_starts_no_partial():
    policy = SchedulingPolicy(partials=PARTIALS)
    utterance(policy, 1)
    start(policy, 2, speech(2, 3.0))
    policy.stop()
    assert isinstance(policy.next_job(), DecodeFinal)
    assert isinstance(policy.next_job(), Finish)


def test_events_of_unknown_utterances_are_ignored():
    policy = SchedulingPolicy()
    policy.accept(UtteranceAudio(9, speech(9, 1.0)))
    assert end(policy, 9) is False and policy.next_job() is None
