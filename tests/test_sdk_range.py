"""The package works on the oldest OpenTelemetry SDK it declares (the dev venv has the newest)."""

from __future__ import annotations

import re
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _oldest(package: str) -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(rf"{re.escape(package)}\s*[><=]", d)]
    found = re.search(r">=\s*([0-9][^,;\s]*)", spec)
    assert found, f"{package} has no lower bound in pyproject.toml"
    return found.group(1)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_oldest_supported_sdk_runs_views_readers_and_exporters(tmp_path: Path) -> None:
    """A venv with the declared minimum API and SDK runs the views, readers and exporters smoke."""
    version = _oldest("opentelemetry-sdk")
    assert _oldest("opentelemetry-api") == version
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, f"opentelemetry-sdk=={version}", f"opentelemetry-api=={version}", "psutil"],
        check=True,
        timeout=300,
    )
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, timeout=300)
    done = subprocess.run(
        [python, str(ROOT / "tests" / "sdk_smoke.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("sdk smoke ok")
