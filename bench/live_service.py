"""The live service under load it will really see: CPU while idle, caption latency, memory.

    python bench/live_service.py                                        # the configured settings, ~4 min
    python bench/live_service.py --variant asr.whisper.trim_encoder=false --json runs/live.json   # side by side

Everything runs the real `subtone run` as a subprocess, with a PulseAudio virtual microphone
(tests/pulse_env.py) and Xvfb (the overlay and the hotkey listener run as for a user; no tray):

1. CPU, push-to-talk mode, nobody talking: process CPU time over --seconds, as % of one core
   (target < 1 %).
2. CPU, voice mode, listening to a quiet room (white noise at -70 dBFS, so the voice detector
   works on every frame) (target < 3 %).
3. Latency, push-to-talk: xdotool holds the hotkey while an utterance of exactly 2, 5 or 10 s
   of real speech (cut from ../shared/data/asr-dev LJSpeech clips at different offsets) plays
   into the virtual microphone; latency = key release → the caption event (the moment the
   caption is posted to the overlay), from CLOCK_MONOTONIC in both processes. Includes the
   post-roll the gate waits for ([trigger] hotkey_post_roll_ms). In voice mode add
   [vad] end_silence_ms (the silence that ends an utterance) to these numbers.
4. Resident memory (VmRSS, VmHWM) with the models loaded, after the latency runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from live_daemon import LiveDaemon, env_for, noise_file, write_config  # noqa: E402
from pulse_env import running_pulse  # noqa: E402

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio  # noqa: E402

ASR_DEV = REPO.parent / "shared" / "data" / "asr-dev"
CLK_TCK = os.sysconf("SC_CLK_TCK")
COMBO_XDOTOOL = "ctrl+alt+space"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def memory_mib(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def measure_cpu(daemon: LiveDaemon, seconds: float) -> float:
    pid = daemon.proc.pid
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        return proc, ":" + fh.readline().strip().decode()


def speech_pool() -> np.ndarray:
    rows = [json.loads(line) for line in (ASR_DEV / "manifest.jsonl").read_text().splitlines()]
    return np.concatenate([load_audio(ASR_DEV / r["audio"]) for r in rows if "ljspeech" in r["audio"]])


def start_daemon(folder: Path, mode: str, overrides: list[str], pulse, display: str) -> LiveDaemon:
    folder.mkdir(parents=True, exist_ok=True)
    sections: dict[str, dict] = {
        "trigger": {"mode": mode},
        "history": {"enabled": False, "file": ""},
        "hotkey": {"combo": "<ctrl>+<alt>+space", "style": "hold"},
    }
    for item in overrides:
        key, _, raw = item.partition("=")
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = json.loads(raw) if raw not in ("true", "false") else raw == "true"
    cfg = write_config(folder, **sections)
    daemon = LiveDaemon(folder, ["--no-tray"], env_for(pulse.server, display), cfg)
    daemon.wait_ready()
    daemon.wait_for(lambda: daemon.events("note"), 120, "the models to load")  # the note comes after loading
    daemon.wait_for(lambda: "open at" in daemon.log(), 30, "the microphone")
    return daemon


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, env=env_for(display=display), timeout=10)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def run_variant(args: argparse.Namespace, overrides: list[str], pulse, display: str, work: Path) -> dict:
    result: dict = {"overrides": overrides}
    # 1. push-to-talk, idle
    daemon = start_daemon(work / "ptt", "push-to-talk", overrides, pulse, display)
    try:
        time.sleep(3.0)
        result["cpu_idle_push_to_talk_pct"] = round(measure_cpu(daemon, args.seconds), 3)
        print(f"CPU idle, push-to-talk: {result['cpu_idle_push_to_talk_pct']:.2f} % of one core", flush=True)

        # 3. latency, push-to-talk
        pool = speech_pool()
        rng = np.random.default_rng(0)
        latencies: dict[str, list[float]] = {}
        for length in args.lengths:
            n = int(length * SAMPLE_RATE)
            for k in range(args.repeats):
                start = int(rng.integers(0, len(pool) - n))
                clip = work / f"utt_{length}_{k}.wav"
                sf.write(clip, pool[start : start + n], SAMPLE_RATE)
                before = len(daemon.captions())
                xdotool(display, "keydown", COMBO_XDOTOOL)
                pulse.play(clip)
                released = time.monotonic()
                xdotool(display, "keyup", COMBO_XDOTOOL)
                got = daemon.wait_for(lambda: daemon.captions()[before:], 60, "a caption")[0]
                latencies.setdefault(f"{length:g}s", []).append(got["mono"] - released)
                time.sleep(0.5)
        result["latency_push_to_talk_s"] = {
            key: {"p50": round(percentile(v, 50), 3), "p95": round(percentile(v, 95), 3), "n": len(v),
                  "all": [round(x, 3) for x in v]}
            for key, v in latencies.items()
        }
        for key, v in result["latency_push_to_talk_s"].items():
            print(f"latency {key}: p50 {v['p50']:.3f} s, p95 {v['p95']:.3f} s (n={v['n']})", flush=True)
        result["partials_posted"] = len([c for c in daemon.events("caption") if not c["is_final"]])
        result["memory_mib_push_to_talk"] = memory_mib(daemon.proc.pid)
        print(f"memory: {result['memory_mib_push_to_talk']}", flush=True)
    finally:
        daemon.terminate()

    # 2. voice mode, quiet room
    daemon = start_daemon(work / "voice", "voice", overrides, pulse, display)
    try:
        room = noise_file(work / "room.wav", args.seconds + 10, -70, "white")
        player = threading.Thread(target=pulse.play, args=(room,))
        player.start()
        time.sleep(3.0)
        result["cpu_voice_quiet_room_pct"] = round(measure_cpu(daemon, args.seconds), 3)
        player.join()
        result["captions_from_quiet_room"] = len(daemon.captions())
        result["memory_mib_voice"] = memory_mib(daemon.proc.pid)
        print(f"CPU voice mode, quiet room: {result['cpu_voice_quiet_room_pct']:.2f} % of one core", flush=True)
    finally:
        daemon.terminate()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measuring window per mode")
    parser.add_argument("--repeats", type=int, default=5, help="utterances per length")
    parser.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="settings for every variant")
    parser.add_argument("--variant", action="append", default=[], metavar="SECTION.KEY=VALUE[,…]",
                        help="also run with these settings, side by side (repeatable)")
    parser.add_argument("--cpu-only", action="store_true", help="only the idle CPU measurements")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.cpu_only:
        args.lengths = []

    work = Path(tempfile.mkdtemp(prefix="subtone-bench-live-"))
    xvfb, display = start_xvfb()
    result: dict = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_avg_at_start": os.getloadavg(),
        "variants": {},
    }
    variants = {"configured": args.overrides}
    for v in args.variant:
        variants[v] = args.overrides + v.split(",")
    try:
        with running_pulse() as pulse:
            for i, (name, overrides) in enumerate(variants.items()):
                print(f"== {name}", flush=True)
                result["variants"][name] = run_variant(args, overrides, pulse, display, work / str(i))
    finally:
        xvfb.terminate()
        xvfb.wait(5)
    result["load_avg_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
