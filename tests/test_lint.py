"""The code base stays ruff-clean: lint and format are part of the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert executable, "ruff is not installed (it is in the [test] extra)"
    return subprocess.run(
        [executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_check_is_clean():
    done = ruff("check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean():
    done = ruff("format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_public_code_is_typed_and_mypy_clean():
    executable = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    assert executable, "mypy is not installed (it is in the [test] extra)"
    packages = [
        "core/estatehub",
        *(
            str(p.parent.relative_to(ROOT))
            for p in sorted(ROOT.glob("plugins/*/estatehub_*/__init__.py"))
        ),
    ]
    failures = []
    for package in packages:
        done = subprocess.run(
            [executable, "--ignore-missing-imports", package],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            failures.append(f"{package}: {done.stdout}{done.stderr}")
    assert not failures, "\n".join(failures)
