"""The demo estate: config, secrets and real-format captures shipped inside the package.

``estatehub demo`` copies them to a temporary folder and runs the hub on them: the clock
is virtual, paced against real time (long gaps compressed), the embedded broker carries the
zigbee2mqtt traffic, the Hikvision pushes arrive as webhooks, and the API is served on
localhost so you can look at states and incidents while it runs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

from rich.console import Console

from ..exceptions import EstatehubError

DEMO_FILES = ("estate.yaml", "secrets.yaml")


class DemoError(EstatehubError):
    """The demo estate could not be written where asked."""


CAPTURES = ("demo.jsonl",)
MAX_REAL_GAP = 1.2  # seconds of real time per gap between records, at most
TICK = 0.1
AFTER_SPEED = 30.0  # virtual seconds per real second once the script is done


def write_demo(target: Path, *, force: bool = False) -> list[Path]:
    """Write the demo estate (config, secrets, captures) into ``target``.

    Refuses to overwrite an existing file unless ``force``: the folder may already hold
    an estate someone has been editing. ``secrets.yaml`` is written readable by its owner
    only.
    """
    package = resources.files(__package__)
    if target.exists() and not target.is_dir():
        raise DemoError(f"{target} is a file; give a folder to write the demo estate into")
    existing = [target / n for n in DEMO_FILES] + [target / "captures" / n for n in CAPTURES]
    clash = [str(p) for p in existing if p.exists()]
    if clash and not force:
        raise DemoError(f"not overwriting {', '.join(clash)} (use --force to replace them)")
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / "captures").mkdir(exist_ok=True)
    except OSError as err:
        raise DemoError(f"cannot create {target}: {err.strerror}") from None
    written = []
    for name in DEMO_FILES:
        path = target / name
        path.write_text(package.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        if name == "secrets.yaml":
            path.chmod(0o600)
        written.append(path)
    for name in CAPTURES:
        path = target / "captures" / name
        path.write_text(package.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(path)
    return written


async def run_demo(*, duration: float | None, port: int | None, verbose: bool = False) -> None:
    """Run the demo estate until the capture is done and ``duration`` is up (or forever)."""
    from ..bootstrap import load_config, plugins_for_config
    from ..clock import VirtualClock
    from ..console import LiveLog
    from ..hub import Hub
    from ..replay import inject
    from ..store import Store
    from ..transports.capture import read_capture
    from ..transports.embedded import EmbeddedMqtt

    console = Console(highlight=False, soft_wrap=True)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="estatehub-demo-"))
    try:
        write_demo(workdir)
        config_path = workdir / "estate.yaml"
        plugins = plugins_for_config(config_path)
        config = load_config(config_path, plugins)
        if port is not None:
            config = replace(config, api=replace(config.api, port=port))
        records = list(read_capture(workdir / "captures" / "demo.jsonl"))
        clock = VirtualClock(records[0].at.timestamp() - 1, tz=config.timezone)
        hub = Hub(
            config,
            plugins,
            clock=clock,
            store=Store(workdir / "estatehub.db"),
            mqtt=EmbeddedMqtt(now=clock.now),
            replaying=True,
        )
        hub.bus.listen("*", LiveLog(clock.to_local, console, verbose=verbose))
        await hub.start()
        token = config.api.tokens[0].token if config.api.tokens else ""
        console.print(
            f"[bold]estatehub demo[/] — {config.name}; API {hub.api_url}  "
            f"(try: curl -H 'Authorization: Bearer {token}' {hub.api_url}/api/incidents)"
        )
        console.print("[dim]virtual clock, long gaps compressed; no broker, no hardware[/]")

        def time_left() -> float:
            return float("inf") if duration is None else duration - (time.monotonic() - started)

        try:
            for record in records:
                if time_left() <= 0:
                    break
                await _pace(hub, clock, record.at.timestamp(), time_left)
                await inject(hub, record)
                await hub.settle()
            console.print(
                "[dim]demo script done; the hub keeps running (Ctrl-C to stop)[/]"
                if duration is None
                else "[dim]demo script done[/]"
            )
            while time_left() > 0:
                await asyncio.sleep(min(TICK, max(time_left(), 0)))
                clock.advance(TICK * AFTER_SPEED)
                await hub.settle()
        finally:
            await hub.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _pace(hub, clock, target: float, time_left) -> None:  # type: ignore[no-untyped-def]
    """Advance the virtual clock to ``target`` over at most MAX_REAL_GAP real seconds."""
    gap = target - clock.timestamp()
    if gap <= 0:
        return
    real = min(MAX_REAL_GAP, gap)
    steps = max(1, int(real / TICK))
    for step in range(1, steps + 1):
        if time_left() <= 0:
            return
        await asyncio.sleep(real / steps)
        clock.advance_to(clock.timestamp() + (target - clock.timestamp()) / (steps - step + 1))
        await hub.settle()
