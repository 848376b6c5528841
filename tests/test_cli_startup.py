"""`scaffold --help` and `--version` must stay light: no torch, lightning, black or libcst."""

import subprocess
import sys

HEAVY = ("torch", "pytorch_lightning", "lightning", "black", "libcst", "jinja2", "yaml")


def _modules_loaded_by(*args: str) -> set[str]:
    probe = (
        "import sys\n"
        "from torch_scaffold.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_imports_nothing_heavy():
    loaded = _modules_loaded_by("--help")
    assert "click" in loaded  # the probe really ran the CLI
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_version_imports_nothing_heavy():
    loaded = _modules_loaded_by("--version")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_version_prints_package_version():
    from torch_scaffold import __version__

    out = subprocess.run(
        [sys.executable, "-m", "torch_scaffold", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0
    assert __version__ in out.stdout
