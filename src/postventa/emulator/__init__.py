"""A stateful, in-memory stand-in for the part of Mercado Libre's public API that postventa uses
(docs/emulator.md). Imports nothing else from postventa."""

from postventa.emulator.app import create_emulator_app, run_emulator
from postventa.emulator.config import EmulatorConfig
from postventa.emulator.edge import ConnectionDropped
from postventa.emulator.runtime import Emulator

__all__ = ["ConnectionDropped", "Emulator", "EmulatorConfig", "create_emulator_app", "run_emulator"]
