"""Side-by-side bus/state benchmark: estatehub against Home Assistant 2025.4.4, in one run.

    bash bench/ha_venv.sh                  # once: Home Assistant's own venv (Python 3.13)
    .venv/bin/python bench/compare.py [--n 200000] [--repeat 3]

The two sides run alternately (HA run 1, estatehub run 1, HA run 2, …) so that a busy
neighbour on this shared machine slows both alike; each figure is the median of the runs,
and each ratio is estatehub ÷ HA (for RSS and start-up, lower is better, so the ratio
shown is HA ÷ estatehub). ``python_calls_per_s`` calibrates the two interpreters: HA runs
on 3.13, we run on the default 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HIGHER_IS_BETTER = (
    "events_per_s_1_callback",
    "events_per_s_10_callbacks",
    "events_per_s_10_coroutines",
    "state_writes_per_s",
)
LOWER_IS_BETTER = ("rss_mib_after_start", "rss_mib_after_100k_states", "startup_s")
TARGET = 1.5


def one_run(python: str, script: str, n: int) -> dict:
    done = subprocess.run(
        [python, str(HERE / script), "--n", str(n), "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ha-python", default=str(ROOT / ".ha-venv" / "bin" / "python"))
    parser.add_argument("--our-python", default=sys.executable)
    args = parser.parse_args()
    if not os.path.exists(args.ha_python):
        print(
            f"no Home Assistant venv at {args.ha_python}: run `bash bench/ha_venv.sh` first",
            file=sys.stderr,
        )
        return 2
    ours: list[dict] = []
    theirs: list[dict] = []
    for run in range(1, args.repeat + 1):
        print(f"[compare] run {run}/{args.repeat}: Home Assistant", file=sys.stderr, flush=True)
        theirs.append(one_run(args.ha_python, "ha_reference.py", args.n))
        print(f"[compare] run {run}/{args.repeat}: estatehub", file=sys.stderr, flush=True)
        ours.append(one_run(args.our_python, "bus_states.py", args.n))

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    report = {
        "n": args.n,
        "repeat": args.repeat,
        "ha": {"version": theirs[0]["version"], "python": theirs[0]["python"]},
        "estatehub": {"version": ours[0]["version"], "python": ours[0]["python"]},
        "load_average": os.getloadavg(),
        "figures": {},
    }
    print(f"\n{'figure':32} {'Home Assistant':>16} {'estatehub':>14} {'ratio':>8}")
    for key in ("python_calls_per_s", *HIGHER_IS_BETTER, *LOWER_IS_BETTER):
        ha, us = median(theirs, key), median(ours, key)
        ratio = (us / ha) if key not in LOWER_IS_BETTER else (ha / us)
        report["figures"][key] = {"ha": ha, "estatehub": us, "ratio": round(ratio, 2)}
        mark = ""
        if key in HIGHER_IS_BETTER:
            mark = " ok" if ratio >= TARGET else f" BELOW {TARGET}x"
        print(f"{key:32} {ha:16,.1f} {us:14,.1f} {ratio:7.2f}x{mark}")
    print("\n(ratio: estatehub ÷ HA for rates; HA ÷ estatehub for RSS and start-up)")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
