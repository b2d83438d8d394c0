"""What a newcomer reads and runs first holds: the README names what the tests need, explains every
status a user sees, shows the demo's port options and an attachment that exists; build output is
ignored; the tests stand apart from bench/."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import typer.main

from postventa.cli.main import app
from postventa.domain.conversation import UNKNOWN_STATUS
from postventa.domain.delivery import LinkStatus, MessageStatus
from postventa.domain.orders import StatusType

PROJECT_ROOT = Path(__file__).resolve().parents[2]
README = (PROJECT_ROOT / "README.md").read_text()
CONFTEST = (PROJECT_ROOT / "tests" / "conftest.py").read_text()


def readme_section(title: str) -> str:
    """The README's text from the heading `title` to the next heading."""
    start = README.index(f"\n{title}\n")
    following = re.search(r"\n#{1,3} ", README[start + len(title) + 2 :])
    return README[start : start + len(title) + 2 + following.start()] if following else README[start:]


def test_the_readme_names_every_test_server_and_its_default():
    for variable in ("POSTVENTA_TEST_POSTGRES", "POSTVENTA_TEST_REDIS"):
        default = re.search(rf'"{variable}", "([^"]+)"', CONFTEST)
        assert default, f"tests/conftest.py no longer reads {variable}"
        assert f"`{variable}`" in README
        assert f"`{default.group(1)}`" in README


def test_every_status_a_user_sees_is_explained():
    statuses = readme_section("### Statuses")
    shown = {
        *(status.value for status in MessageStatus),
        *(status.value for status in LinkStatus),
        "active",
        "blocked",
        UNKNOWN_STATUS.status,
        *(status.label for status in StatusType),
    }
    unexplained = {status for status in shown if f"`{status}`" not in statuses}
    assert not unexplained
    for status in MessageStatus:  # each message status has a row of its own
        assert re.search(rf"^\| `{status.value}` \| \S", statuses, re.MULTILINE), status


def test_the_demo_port_options_are_in_the_readme_and_exist():
    demo = typer.main.get_command(app).commands["demo"]  # type: ignore[attr-defined]
    options = {option for parameter in demo.params for option in parameter.opts}
    for option in ("--port", "--emulator-port"):
        assert option in options
        assert option in readme_section("## Try it")


def test_the_multipart_example_attaches_a_pdf_that_is_shipped():
    attached = re.findall(r"-F file=@(\S+)", README)
    assert attached == ["examples/factura.pdf"]
    assert_well_formed_pdf((PROJECT_ROOT / attached[0]).read_bytes())


def assert_well_formed_pdf(content: bytes) -> None:
    """A PDF header, a cross-reference table whose every offset starts its object, and the trailer."""
    assert content.startswith(b"%PDF-1.")
    assert content.rstrip().endswith(b"%%EOF")
    start = int(re.search(rb"startxref\s+(\d+)", content).group(1))  # type: ignore[union-attr]
    assert content[start:].startswith(b"xref")
    entries = re.findall(rb"(\d{10}) (\d{5}) n ", content[start:])
    assert entries
    for number, (offset, _generation) in enumerate(entries, 1):
        assert content[int(offset) :].startswith(b"%d 0 obj" % number)


def test_the_sdk_build_directory_is_ignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "sdk/build/lib/postventa_sdk/client.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=False,
    )
    assert ignored.returncode == 0


def test_no_test_imports_the_benchmarks():
    importing = []
    for path in (PROJECT_ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(name == "bench" or name.startswith("bench.") for name in names):
                importing.append(str(path.relative_to(PROJECT_ROOT)))
    assert importing == []
