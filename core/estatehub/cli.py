"""The ``estatehub`` command: run, check-config, plugins, replay, demo, automations."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .exceptions import EstatehubError

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The estate's YAML config file.",
)


def _setup_logging(verbose: bool) -> None:
    # On a terminal, rich's handler; under systemd or in a redirect, plain lines that are
    # never wrapped or padded to 80 columns (journald and grep want one line per record).
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler()
        fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.ERROR, format=fmt, handlers=[handler]
    )


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[red]error:[/] {escape(message)}", markup=True
    )
    sys.exit(1)


@click.group()
@click.version_option(__version__, prog_name="estatehub")
def main() -> None:
    """estatehub: the smart systems of a housing estate, run like Home Assistant runs a home."""


@main.command("check-config")
@CONFIG_OPTION
def check_config(config_path: Path) -> None:
    """Validate an estate config; exit 0 if valid, 1 listing every error."""
    from .bootstrap import load_config, plugins_for_config
    from .config import ConfigError

    try:
        plugins = plugins_for_config(config_path)
        config = load_config(config_path, plugins)
    except ConfigError as err:
        for issue in err.issues:
            click.echo(str(issue), err=True)
        click.echo(
            f"{len(err.issues)} error{'s' if len(err.issues) != 1 else ''} in {config_path}",
            err=True,
        )
        sys.exit(1)
    except EstatehubError as err:
        _fail(str(err))
    modules = ", ".join(config.modules) or "none"
    click.echo(f"{config_path}: valid — estate {config.name!r}, modules: {modules}")


@main.command("plugins")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Honour this config's allow/block lists.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of a table (for scripts)."
)
def plugins_command(config_path: Path | None, as_json: bool) -> None:
    """List installed plugins: name, version, status, what they provide and their hooks."""
    import json

    from .bootstrap import load_plugins, plugins_for_config

    try:
        plugins = plugins_for_config(config_path) if config_path else load_plugins()
        regs = plugins.registrations()
    except EstatehubError as err:
        _fail(str(err))
    rows: list[dict[str, Any]] = []
    for info in plugins.plugins():
        provides = [
            f"subsystem {key[1]}"
            for key, owner in regs.owner.items()
            if key[0] == "subsystem" and owner == info.name
        ]
        provides += [
            f"{key[0].split(':', 1)[1]} adapter {key[1]}"
            for key, owner in regs.owner.items()
            if key[0].startswith("adapter:") and owner == info.name
        ]
        provides += [
            f"config section {key[1]}"
            for key, owner in regs.owner.items()
            if key[0] == "section" and owner == info.name
        ]
        rows.append(
            {
                "name": info.name,
                "version": info.version,
                "distribution": info.distribution,
                "status": info.status,
                "error": info.error,
                "hooks": list(info.hooks),
                "provides": provides,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="estatehub plugins")
    for column in ("name", "version", "status", "provides", "hooks"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = row["status"] + (f": {row['error']}" if row["error"] else "")
        table.add_row(
            row["name"], row["version"], status, "\n".join(row["provides"]), "\n".join(row["hooks"])
        )
    Console().print(table)


@main.command("replay")
@CONFIG_OPTION
@click.argument("capture", type=click.Path(path_type=Path))
@click.option(
    "--tail",
    default="15m",
    show_default=True,
    help="Virtual time to keep running after the last record.",
)
@click.option("--states", is_flag=True, help="Also print state_changed events.")
def replay_command(config_path: Path, capture: Path, tail: str, states: bool) -> None:
    """Replay CAPTURE on the virtual clock and print the events, one JSON line each."""
    from . import config_validation as cv
    from .config import ConfigError
    from .replay import replay

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
    logging.getLogger("estatehub.replay").setLevel(logging.WARNING)
    try:
        tail_delta: timedelta = cv.duration(tail)
    except Exception as err:
        _fail(f"--tail: {err}")
    try:
        asyncio.run(
            replay(config_path, capture, sys.stdout, tail=tail_delta, include_states=states)
        )
    except ConfigError as err:
        for issue in err.issues:
            click.echo(str(issue), err=True)
        sys.exit(1)
    except EstatehubError as err:
        _fail(str(err))


@main.command("run")
@CONFIG_OPTION
@click.option(
    "--capture",
    type=click.Path(path_type=Path),
    help="Capture inbound traffic to this JSON Lines file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run_command(config_path: Path, capture: Path | None, verbose: bool) -> None:
    """Run the hub for an estate until interrupted (SIGINT/SIGTERM)."""
    _setup_logging(verbose)
    try:
        asyncio.run(_run(config_path, capture, verbose))
    except EstatehubError as err:
        from .config import ConfigError

        if isinstance(err, ConfigError):
            for issue in err.issues:
                click.echo(str(issue), err=True)
            sys.exit(1)
        _fail(str(err))


async def _run(config_path: Path, capture_path: Path | None, verbose: bool) -> None:
    from .bootstrap import load_config, plugins_for_config
    from .console import LiveLog
    from .hub import Hub
    from .transports.capture import CaptureWriter

    plugins = plugins_for_config(config_path)
    config = load_config(config_path, plugins)
    path = capture_path or config.capture_path
    hub = Hub(
        config,
        plugins,
        capture=CaptureWriter(path) if path else None,
        advertise=config.api.advertise,
    )
    hub.bus.listen("*", LiveLog(hub.clock.to_local, verbose=verbose))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    Console(highlight=False, soft_wrap=True).print(
        f"[bold]API[/] {hub.api_url}  (stop with Ctrl-C)"
    )
    try:
        await stop.wait()
    finally:
        await hub.stop()


@main.command("demo")
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0),
    help="Stop by itself after SECONDS (for scripts).",
)
@click.option(
    "--write",
    "write_dir",
    type=click.Path(path_type=Path),
    help="Write the demo estate to DIR and exit.",
)
@click.option(
    "--port",
    type=int,
    default=None,
    help="API port (default: the demo config's, 8740; 0 = any free port).",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Show every plate read and barrier command too."
)
def demo_command(
    duration: float | None, write_dir: Path | None, port: int | None, verbose: bool
) -> None:
    """Run the demo estate: no broker, no hardware, real-format traffic, API on localhost."""
    from .demo import run_demo, write_demo

    if write_dir is not None:
        written = write_demo(write_dir)
        for path in written:
            click.echo(f"wrote {path}")
        click.echo(f"try: estatehub check-config -c {write_dir / 'estate.yaml'}")
        click.echo(
            f"     estatehub replay -c {write_dir / 'estate.yaml'} {write_dir / 'captures' / 'demo.jsonl'}"
        )
        return
    _setup_logging(False)
    try:
        asyncio.run(run_demo(duration=duration, port=port, verbose=verbose))
    except KeyboardInterrupt:
        pass
    except EstatehubError as err:
        _fail(str(err))


@main.group("blueprint")
def blueprint_group() -> None:
    """Blueprints: shared automation recipes in Home Assistant's format."""


@blueprint_group.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
def blueprint_validate(path: Path) -> None:
    """Check a blueprint file; exit 0 if valid, 1 listing every error with file and line."""
    from .automation.blueprint import BlueprintError, validate_file

    try:
        blueprint = validate_file(path)
    except BlueprintError as err:
        for issue in err.issues:
            click.echo(str(issue), err=True)
        click.echo(
            f"{len(err.issues)} error{'s' if len(err.issues) != 1 else ''} in {path}", err=True
        )
        sys.exit(1)
    inputs = ", ".join(blueprint.inputs) or "none"
    used = ", ".join(blueprint.extensions)
    extensions = f"; estatehub extensions: {used}" if used else ""
    required = [item.key for item in blueprint.inputs.values() if item.required]
    # Without a value for every input the automation itself cannot be built yet.
    later = (
        f"; triggers and actions are checked where it is used (no default: {', '.join(required)})"
        if required
        else ""
    )
    click.echo(f"{path}: valid — blueprint {blueprint.name!r}, inputs: {inputs}{extensions}{later}")


@main.group("automations")
def automations_group() -> None:
    """The automations of a running hub, read through its API."""


@automations_group.command("trace")
@click.argument("automation_id")
@CONFIG_OPTION
@click.option(
    "--token",
    envvar="ESTATEHUB_TOKEN",
    required=True,
    help="An API token (or set ESTATEHUB_TOKEN).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the traces as JSON.")
def automations_trace(automation_id: str, config_path: Path, token: str, as_json: bool) -> None:
    """Show the last runs of one automation, step by step."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    from .automation import describe_trace
    from .bootstrap import load_config, plugins_for_config

    try:
        config = load_config(config_path, plugins_for_config(config_path))
    except EstatehubError as err:
        _fail(str(err))
    quoted = urllib.parse.quote(automation_id, safe="")
    url = f"http://{config.api.host}:{config.api.port}/api/automations/{quoted}/traces"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            traces = json.load(response)
    except urllib.error.HTTPError as err:
        try:
            message = json.load(err).get("error", str(err))
        except ValueError:
            message = str(err)
        _fail(message)
    except urllib.error.URLError as err:
        _fail(f"cannot reach the hub at {url}: {err.reason}")
    if as_json:
        click.echo(json.dumps(traces, ensure_ascii=False, indent=2))
        return
    if not traces:
        click.echo(f"{automation_id} has not run since the hub started")
    for number, trace in enumerate(traces):
        if number:
            click.echo()
        click.echo(describe_trace(trace))
