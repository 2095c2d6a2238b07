"""The `subtone` command tree: every level answers --help, and the global --config reaches every command.

Nothing here exports or trains: a setting is shown to arrive by the first thing the command does
with it (a config error, or the models folder it looks in).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from subtone.export import commands as factory
from subtone.service.cli.main import build_parser, main


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the root and every command and subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


TREE = dict(walk(build_parser()))
FACTORY_TREE = dict(walk(factory.build_parser()))


def test_the_tree_holds_the_factory_and_runtime_commands():
    expected = {("export", "whisper"), ("export", "nemo"), ("export", "emotion"), ("train", "emotion"),
                ("eval", "emotion"), ("transcribe",), ("run",), ("doctor",), ("devices",), ("history", "export")}
    assert expected <= set(TREE)


def test_python_m_subtone_export_has_the_same_factory_tree():
    assert set(FACTORY_TREE) - {()} == {p for p in TREE if p and p[0] in factory.COMMANDS}


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("path", sorted(TREE), ids=lambda p: " ".join(p) or "subtone")
def test_every_command_answers_help(path, flag, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*path, flag])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(("usage: subtone", *path)))
    description = TREE[path].description
    assert description, f"`subtone {' '.join(path)}` has no description"
    assert "".join(description.split()) in "".join(out.split())  # the help wraps it


@pytest.mark.parametrize("path", sorted(p for p in FACTORY_TREE if p), ids=" ".join)
def test_python_m_subtone_export_answers_help(path, capsys):
    with pytest.raises(SystemExit) as exit:
        factory.main([*path, "--help"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(" ".join(("usage: python -m subtone.export", *path)))


@pytest.mark.parametrize("command", [
    ["-m", "subtone.service.cli.main", "export", "--help"],
    ["-m", "subtone.export", "train", "emotion", "-h"],
])
def test_help_through_a_real_process(command):
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:") and proc.stderr == ""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A one-clip emotion manifest (the clip is never read: every case here stops before audio)."""
    path = tmp_path / "manifest.csv"
    path.write_text("path,dataset,speaker,sex,emotion\nclip.wav,ravdess,01,m,happy\n")
    return path


# Each also names paths in tmp, so a command that ignored the config file would fail fast or
# write only there: never a real export or training into the project.
FACTORY_COMMANDS = [
    "export whisper --out {out} --quantize none",
    "export nemo --checkpoint {out}/model.nemo --out {out}",
    "export emotion --run {out} --out {out}",
    "train emotion --manifest {manifest} --epochs 1 --members 1 --out {out}",
    "eval emotion {manifest} --out {out}",
]


@pytest.mark.parametrize("command", FACTORY_COMMANDS, ids=lambda c: " ".join(c.split()[:2]))
def test_a_bad_config_file_stops_every_factory_command(command, tmp_path, manifest, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[models]\ndri = "typo"\n')
    argv = ["--config", str(config), *command.format(out=tmp_path / "out", manifest=manifest).split()]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"subtone: {config}: unknown key 'models.dri' (known keys here: dir)"]


def test_python_m_subtone_export_reads_the_config_file_too(tmp_path):
    missing = tmp_path / "nope.toml"
    proc = subprocess.run([sys.executable, "-m", "subtone.export", "--config", str(missing), "export", "whisper"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"subtone: config file not found: {missing}"]


@pytest.mark.parametrize("entry", [["-m", "subtone.service.cli.main"], ["-m", "subtone.export"]], ids=["subtone", "python -m subtone.export"])
def test_eval_looks_for_its_model_in_the_configured_models_folder(entry, tmp_path, manifest):
    models = tmp_path / "my models"
    models.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[models]\ndir = "{models}"\n\n[emotion]\nmodel = "my-emotion"\n')
    proc = subprocess.run([sys.executable, *entry, "-v", "--config", str(config), "eval", "emotion", str(manifest)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"subtone: model 'my-emotion' is not in {models / 'manifest.json'} (models there: none)"
    ]


@pytest.mark.parametrize("command", ["train emotion --manifest {manifest}", "export emotion --run {out} --out {out}"],
                         ids=["train", "export"])
def test_without_torch_the_user_is_told_to_install_the_train_extra(command, tmp_path, manifest):
    config = tmp_path / "config.toml"
    config.write_text("")
    argv = ["--config", str(config), *command.format(manifest=manifest, out=tmp_path / "out").split()]
    # A venv without torch (only the export extra): `import torch` fails as it would there.
    code = f"import sys; sys.modules['torch'] = None; from subtone.service.cli.main import main; sys.exit(main({argv!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"subtone: `subtone {' '.join(command.split()[:2])}` needs the train extra (torch is not installed); "
        "install it with: pip install -c constraints.txt -e '.[train]'"
    ]
    assert not (tmp_path / "out").exists()


def test_without_onnx_the_user_is_told_to_install_the_export_extra(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    argv = ["--config", str(config), "export", "whisper", "--out", str(tmp_path / "out")]
    code = f"import sys; sys.modules['onnx'] = None; from subtone.service.cli.main import main; sys.exit(main({argv!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "subtone: `subtone export whisper` needs the export extra (onnx is not installed); "
        "install it with: pip install -c constraints.txt -e '.[export]'"
    ]


def test_train_options_default_to_the_training_recipe():
    train = pytest.importorskip("subtone.export.emotion.train")  # needs torch
    from subtone.export.emotion.cli import recipe_sizes
    from subtone.export.emotion.head_train import HeadConfig

    args = build_parser().parse_args(["train", "emotion"])
    recipe = train.TrainConfig()
    assert (*recipe_sizes(args), args.tess_per_epoch) == (recipe.epochs, recipe.members, recipe.tess_per_epoch)
    head = build_parser().parse_args(["train", "emotion", "--encoder", "whisper-base"])
    assert recipe_sizes(head) == (HeadConfig().epochs, HeadConfig().seeds)
