"""``reconcile emulator serve``: a Moodle web-service emulator for manual and CI use."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import click
import yaml

from ..emulator.config import EmulatorConfig
from ..emulator.emulator import MoodleEmulator
from ..errors import ConfigurationError
from .options import INSTANT


def _load_seed(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: not a seed file ({exc})") from None
    if not isinstance(data, dict | None):
        raise ConfigurationError(f"{path}: not a seed file (a mapping of tables is expected)")
    return data or {}


@click.group()
def emulator() -> None:
    """Run the Moodle 4.5 web-service emulator (tests, demos, benchmarks)."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 = any free port."
)
@click.option("--token", required=True, help="The web-service token clients must send.")
@click.option("--seed", "seed_file", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="YAML or JSON site data, the shape of MoodleEmulator.seed().")
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--now", type=INSTANT, help="Fix the clock, e.g. 2026-11-28T00:00:00Z.")
@click.option("--debug", is_flag=True, help="Errors carry debuginfo (site debug=DEVELOPER).")
def serve(host: str, port: int, token: str, seed_file: Path | None, latency_ms: float,
          now: dt.datetime | None, debug: bool) -> None:
    """Serve /webservice/rest/server.php until interrupted."""
    config = EmulatorConfig(token=token, host=host, port=port, latency_ms=latency_ms,
                            now=now, debug=debug)
    emu = MoodleEmulator(config)
    if seed_file is not None:
        emu.seed(_load_seed(seed_file))
    try:
        emu.start()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(emu.url, nl=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
