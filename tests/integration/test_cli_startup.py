"""`postventa --help` and the admin commands start without the web stack (FastAPI, Starlette, uvicorn)
or the Mercado Libre client (aiohttp): a command that needs neither does not wait for them to load.

The commands run one after the other in a fresh process, so a package any of them loads shows up
from that command on; the installed `postventa --help` is run as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

POSTVENTA = Path(sys.executable).with_name("postventa")
HEAVY_PACKAGES = ("fastapi", "starlette", "uvicorn", "aiohttp", "postventa.meli.client")

# Runs the commands of the CLI one after the other in this process, as `postventa` runs each, and
# writes, for each, its exit code and the heavy packages loaded by the time it finished.
PROBE = """
import json, sys
from postventa.cli.main import app
output, heavy, commands = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
reports = []
for arguments in commands:
    try:
        app(arguments, prog_name="postventa")
    except SystemExit as exit:
        code = exit.code
    else:
        code = 0
    reports.append({"exit": code, "loaded": [name for name in heavy if name in sys.modules]})
with open(output, "w") as file:
    json.dump(reports, file)
"""

# What each command exits with: all succeed but the buyer reply to an order that does not exist.
ADMIN_COMMANDS = {
    ("--help",): 0,
    ("accounts", "--help"): 0,
    ("db", "upgrade"): 0,
    ("accounts", "create", "Tienda"): 0,
    ("keys", "create", "--account", "1"): 0,
    ("accounts", "show", "1"): 0,
    ("buyer-reply", "999", "Gracias"): 3,
    ("messages", "requeue"): 0,
    ("webhooks", "--help"): 0,
    ("webhooks", "list", "1"): 0,
}


def probe(directory: Path, commands: list[list[str]]) -> list[dict[str, object]]:
    """Run each `postventa ARGUMENTS` in turn, on a SQLite file in `directory`: what each loaded."""
    output = directory / "loaded.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("POSTVENTA_")}
    env |= {
        "POSTVENTA_DATABASE_URL": f"sqlite:///{directory / 'cli.db'}",
        "POSTVENTA_TOKEN_KEY_FILE": str(directory / "token.key"),
    }
    command = [sys.executable, "-c", PROBE, str(output), json.dumps(HEAVY_PACKAGES), json.dumps(commands)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert output.exists(), result.stderr
    return list(json.loads(output.read_text()))


def test_help_and_admin_commands_load_neither_the_web_stack_nor_the_marketplace_client(tmp_path):
    commands = [list(arguments) for arguments in ADMIN_COMMANDS]
    reports = probe(tmp_path, commands)
    for (arguments, expected_exit), report in zip(ADMIN_COMMANDS.items(), reports, strict=True):
        assert report["exit"] == expected_exit, (arguments, report)
        assert report["loaded"] == [], f"postventa {' '.join(arguments)} loaded {report['loaded']}"


def test_the_installed_command_prints_its_help():
    result = subprocess.run(
        [str(POSTVENTA), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: postventa" in result.stdout
