import subprocess
import sys

# Start-up builds the whole command tree, so the factory's light registrations (subtone.export.commands,
# *_cli modules) are imported; what must not be is the factory's tools, nor the live extra's.
HEAVY = ("torch", "onnx", "matplotlib", "librosa", "nemo", "webrtcvad", "sounddevice", "PySide6", "pystray", "pynput")


def test_cli_start_up_imports_no_heavy_or_optional_modules():
    """`subtone export …` must work in a venv without the live extra, and start-up must stay quick."""
    code = (
        "import sys; from subtone.service.cli.main import build_parser; build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_teaches_the_first_steps():
    out = subprocess.run([sys.executable, "-m", "subtone.service.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("transcribe", "run", "export", "doctor", "devices"):
        assert command in out.stdout
