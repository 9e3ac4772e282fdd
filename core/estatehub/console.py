"""A live, readable log of what the hub does, for ``run`` and ``demo``.

One line per event people care about, in the estate's local time; plates masked as in
the logs (``沪A·***45``), because a console is often on a guard-room screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from .bus import Event
from .privacy import mask_plate


def _money(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d} CNY"


def _fmt_decision(d: Mapping[str, Any]) -> str:
    colour = {"open": "green", "deny": "red", "review": "yellow"}.get(d["verdict"], "white")
    plate = mask_plate(d["plate"]) if d.get("plate") else "(no plate)"
    return (
        f"[bold]parking[/]  gate {escape(d['gate'])} ({d.get('direction', '?')}): {escape(plate)} "
        f"{escape(d.get('category', ''))} → [{colour}]{d['verdict'].upper()}[/] ({escape(d['reason'])})"
    )


FORMATTERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "parking.decision": _fmt_decision,
    "parking.duplicate": lambda d: (
        f"[dim]parking  gate {escape(d['gate'])}: duplicate read counted once ({escape(d['reason'])})[/]"
    ),
    "parking.fee_due": lambda d: (
        f"[bold]parking[/]  {escape(mask_plate(d['plate']))} stayed {d['minutes']} min: "
        f"[yellow]{_money(d['fee_fen'])} due[/] before the barrier opens"
    ),
    "parking.payment": lambda d: (
        f"[bold]parking[/]  {escape(mask_plate(d['plate']))} paid {_money(d['amount_fen'])} ({escape(d['method'])}) by {escape(str(d.get('by')))}"
    ),
    "parking.session_closed": lambda d: (
        f"[bold]parking[/]  {escape(mask_plate(d['plate']))} left after {d['minutes']} min, fee {_money(d['fee_fen'])}"
    ),
    "parking.barrier": lambda d: (
        f"[dim]parking  barrier {escape(d['gate'])}: {d['action']} (command {escape(d['command_id'])})"
        + (f" — {escape(d['reason'])}" if d.get("reason") else "")
        + "[/]"
    ),
    "parking.plate_read": lambda d: (
        f"[dim]parking  gate {escape(d['gate'])} read {escape(mask_plate(d['plate'] or d['raw'][:12]))}"
        + (f" — {escape('; '.join(d['issues']))}" if d.get("issues") else "")
        + "[/]"
    ),
    "home.alarm": lambda d: (
        f"[bold red]home[/]     {escape(d['kind'])} detected by {escape(d['detector'])} in flat {escape(str(d.get('flat')))}"
    ),
    "home.alarm_cleared": lambda d: (
        f"[bold]home[/]     {escape(d['detector'])} no longer reports {escape(d['kind'])}"
    ),
    "home.retained_alarm_state": lambda d: (
        f"[yellow]home[/]     {escape(d['detector'])}: retained state says {escape(d['kind'])}; not a new alarm"
    ),
    "incident.raised": lambda d: (
        f"[bold red]incident[/] {escape(d['id'])} RAISED {escape(d['kind'])} ({d['severity']}) at {escape(d['location'])}"
        + (f" → notify {escape(', '.join(d.get('notify') or []))}" if d.get("notify") else "")
    ),
    "incident.escalated": lambda d: (
        f"[bold red]incident[/] {escape(d['id'])} ESCALATED"
        + (f" (repeat {d['repeat']})" if d.get("repeat") else "")
        + f" → notify {escape(', '.join(d.get('notify') or []))}"
        + (f" — [bold]{escape(d['instruction'])}[/]" if d.get("instruction") else "")
    ),
    "incident.acknowledged": lambda d: (
        f"[bold green]incident[/] {escape(d['id'])} acknowledged by {escape(d['by'])}"
    ),
    "incident.resolved": lambda d: (
        f"[bold green]incident[/] {escape(d['id'])} resolved by {escape(d['by'])}"
    ),
    "transport.rejected": lambda d: (
        f"[magenta]rejected[/] {escape(d['transport'])} input from {escape(d['source'])}: {escape(d['reason'])}"
    ),
    "transport.mqtt_state": lambda d: (
        f"[bold red]mqtt[/]     broker {escape(d['broker'])} unreachable; reconnecting"
        if d["state"] != "connected"
        else f"[bold green]mqtt[/]     broker {escape(d['broker'])} connected"
    ),
    "hub.started": lambda d: (
        f"[bold]hub[/]      {escape(d['estate'])} started; modules: "
        + ", ".join(f"{escape(k)}={v}" for k, v in d["modules"].items())
    ),
}


class LiveLog:
    """Prints a readable line per interesting event (a ``"*"`` bus listener)."""

    def __init__(
        self,
        to_local: Callable[[float], Any],
        console: Console | None = None,
        verbose: bool = False,
    ) -> None:
        # soft_wrap: one event, one line, whatever the width (terminals wrap by themselves).
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._to_local = to_local
        self._verbose = verbose

    def __call__(self, event: Event) -> None:
        formatter = FORMATTERS.get(event.type)
        if formatter is None:
            return
        routine = event.type in ("parking.plate_read", "parking.barrier")
        # Routine detail stays out unless asked for, except a guard's override: who opened
        # a barrier by hand is always shown.
        if (
            routine
            and not self._verbose
            and not str(event.data.get("reason", "")).startswith("guard override")
        ):
            return
        try:
            text = formatter(event.data)
        except (KeyError, TypeError):
            text = escape(f"{event.type} {dict(event.data)}")
        stamp = self._to_local(event.at).strftime("%m-%d %H:%M:%S")
        self.console.print(f"[cyan]{stamp}[/] {text}")
