"""`pip install ./sdk` alone, in a fresh virtual environment, installs the client and httpx2 with its
own dependencies: none of the server's. Uses the package index pip is configured with."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

SDK = Path(__file__).resolve().parents[2] / "sdk"
SERVER_ONLY = {"fastapi", "sqlalchemy", "uvicorn", "starlette", "pydantic", "alembic", "typer", "postventa"}
INSTALL_TIMEOUT_SECONDS = 300


def canonical(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(distribution: str) -> set[str]:
    """The distribution and everything it requires on this interpreter, as installed here."""
    found: set[str] = set()
    pending = [distribution]
    while pending:
        name = canonical(pending.pop())
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_sdk_installs_alone_without_any_server_dependency(tmp_path):
    # A copy, so that the build leaves nothing in the checkout (and no editable install's leftovers).
    source = tmp_path / "sdk"
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    venv = tmp_path / "venv"
    # Without pip of its own (seconds saved): this environment's pip installs into it (--python).
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check")

    run(*pip, "install", "--quiet", source, cwd=tmp_path)
    frozen = run(*pip, "freeze", cwd=tmp_path)
    imported = run(
        python,
        "-c",
        "import postventa_sdk as sdk; from pathlib import Path; "
        "print(sdk.__file__); print(sdk.__version__); "
        "print((Path(sdk.__file__).parent / 'py.typed').is_file()); print(sdk.Reason.parse('other').value)",
        cwd=tmp_path,
    )

    installed = {canonical(re.split(r"==| @ ", line)[0]) for line in frozen.splitlines() if line.strip()}
    assert {"postventa-sdk", "httpx2"} <= installed
    assert installed <= {"postventa-sdk"} | dependency_closure("httpx2"), frozen
    assert not installed & SERVER_ONLY, frozen
    assert "httpx2==2.16.2" in frozen.splitlines()
    location, version, typed, reason = imported.split()
    assert Path(location).is_relative_to(venv)  # installed into the venv, not read from the checkout
    assert (version, typed, reason) == ("0.1.0", "True", "4")
