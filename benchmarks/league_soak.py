"""Issue 17's league soak: a league on Ray whose learners and league actor are SIGKILLed about once a
minute, then checked for anything lost.

Usage::

    .venv/bin/python benchmarks/league_soak.py [--minutes 10] [--kill-every 60] [--seed 0] [--check] [--json PATH]
    .venv/bin/python benchmarks/league_soak.py --smoke        # a small league, kills every 25 s for 2 minutes

Needs Ray (``pip install -r requirements-scale.txt``). ``user/scale.py league`` runs as a user runs it,
in a subprocess with a new local Ray (2 CPUs): a main agent and a main exploiter (the ``cpu`` config's
agent without its warm start, ``--segment-steps`` steps a segment, a checkpoint every
``--save-freq``), sized to outlast ``--minutes``, with loose admission rules (every main snapshot
joins the pool, an exploiter at a 50% win rate) so that admissions are frequent. Every
``--kill-every`` seconds (+-30%, seeded by ``--seed``) the soak SIGKILLs one of the league's
processes at random: a learner's Ray worker or the league actor (each writes its pid to
``<storage>/pids/``). After ``--minutes`` the kills stop and the league runs to its end. Then:

- **alive**: the league command exits 0 and every role reported all its segments;
- **no admission lost or duplicated**: every report that admitted its player has exactly one admit
  event and one pool entry, and no other player is in the pool (league.json);
- **learners resume from their last checkpoint**: for each learner kill, the segment it was training
  held a checkpoint at step s (if any) and its ``training.log`` shows ``Resuming ... from step s``
  afterwards; no folder set aside as a failed attempt holds a checkpoint;
- **the league actor reloads league.json**: after each actor kill a new actor process writes its pid,
  and the reports counted in league.json (polled every second) never go down.

``--check`` fails when any of these is missed or the soak ran under ``--minutes``. Output goes to
``--storage`` (default ``checkpoints/league_soak/<time>``; kept for inspection, delete it when done).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from benchmarks.report import add_report_flags, finish
from user.scale import LEAGUE_ACTOR, pid_file, ray_available

REPO = Path(__file__).resolve().parents[1]
ROLES = ("main", "main_exploiter")


def league_command(cfg: argparse.Namespace, storage: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "user.scale",
        "league",
        "--backend",
        "ray",
        "--num-cpus",
        "2",
        "--storage",
        str(storage),
        "--config",
        "cpu",
        "--segments",
        *(f"{role}={cfg.segments}" for role in ROLES),
        "--segment-steps",
        str(cfg.segment_steps),
        "--eval-matches",
        "2",
        # Loose admission rules, so that the soak admits often: each admission is what must not be lost.
        "--main-admit",
        "0",
        "--exploiter-admit",
        "0.5",
        "--max-failures",
        "100",  # a learner may be killed many times; each retry continues its segment
        "--set",
        "warm_start.seconds=0",
        "--set",
        f"training.save_freq={cfg.save_freq}",
        "--set",
        "eval.max_timesteps=900",
        "--set",
        "training.final_video=false",
        "--set",
        f"env.n_envs={cfg.n_envs}",
    ]


def read_pid(storage: Path, name: str) -> int | None:
    try:
        return int(pid_file(storage, name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def reports_in(storage: Path) -> int | None:
    try:
        state = json.loads((storage / "league.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return sum(len(r) for r in state["reports"].values())


def segment_in_training(storage: Path, role: str) -> Path | None:
    """The role's newest segment folder (the one its learner trains now, or finished last)."""
    folders = [d for d in (storage / "runs" / role).glob("g*_seg*") if d.is_dir() and "." not in d.name]
    return max(folders, key=lambda d: d.stat().st_ctime, default=None)


def newest_checkpoint(run_dir: Path | None) -> int | None:
    if run_dir is None or not (run_dir / "manifest.json").exists():
        return None
    from user.scale import newest_checkpoint_step

    return newest_checkpoint_step(run_dir)


def kill_one(storage: Path, rng: random.Random, started: float) -> dict[str, Any] | None:
    """SIGKILL a random live league process; what was killed, and the segment a learner was training."""
    victims = [(name, pid) for name in (LEAGUE_ACTOR, *ROLES) if (pid := read_pid(storage, name)) and alive(pid)]
    if not victims:
        return None
    name, pid = rng.choice(victims)
    kill = {"at_s": round(time.monotonic() - started, 1), "victim": name, "pid": pid}
    if name != LEAGUE_ACTOR:
        segment = segment_in_training(storage, name)
        kill["segment"] = str(segment) if segment else None
        kill["checkpoint_step"] = newest_checkpoint(segment)
    os.kill(pid, signal.SIGKILL)
    return kill


def resumed_from(run_dir: Path, step: int) -> bool:
    """The segment's log shows a resume from ``step`` or later (a checkpoint written between the
    soak's look and its kill is the newer last checkpoint)."""
    log = (run_dir / "training.log").read_text(encoding="utf-8", errors="replace")
    steps = [int(s.replace(",", "")) for s in re.findall(r"Resuming .* from step ([\d,]+)", log)]
    return any(s >= step for s in steps)


def check_league(
    storage: Path, kills: list[dict[str, Any]], report_counts: list[int], segments: int, segment_steps: int
) -> dict:
    state = json.loads((storage / "league.json").read_text())
    finished = {role: len(state["reports"].get(role, [])) for role in ROLES}
    admitted = [r["decision"]["player"] for rs in state["reports"].values() for r in rs if r["decision"]["admitted"]]
    admit_events = [e["player"] for e in state["events"] if e["event"] == "admit"]
    pool = [p["name"] for p in state["players"]]
    learner_kills = [k for k in kills if k["victim"] != LEAGUE_ACTOR]
    # Kills of a learner mid-segment after its first checkpoint (a finished segment needs no resume).
    with_checkpoint = [k for k in learner_kills if (k.get("checkpoint_step") or segment_steps) < segment_steps]
    resumed = [k for k in with_checkpoint if resumed_from(Path(k["segment"]), k["checkpoint_step"])]
    set_aside = [d for d in (storage / "runs").glob("*/*.attempt*") if any(d.glob("rl_model_*_steps.zip"))]
    actor_kills = [k for k in kills if k["victim"] == LEAGUE_ACTOR]
    final_actor = read_pid(storage, LEAGUE_ACTOR)
    actor_restarted = all(final_actor != k["pid"] for k in actor_kills)
    return {
        "roles_finished": sum(finished[r] == segments for r in ROLES),
        "segments_reported": finished,
        "admissions": len(admitted),
        "admit_events": len(admit_events),
        "admissions_lost": len(set(admitted) - set(admit_events)) + len(set(admitted) - set(pool)),
        "admissions_duplicated": (len(admit_events) - len(set(admit_events))) + (len(pool) - len(set(pool))),
        "pool_not_admitted": len(set(pool) - set(admitted)),
        "resets": sum(e["event"] == "reset" for e in state["events"]),
        "learner_kills": len(learner_kills),
        "learner_kills_with_checkpoint": len(with_checkpoint),
        "resumed_from_last_checkpoint": len(resumed),
        "attempts_set_aside_with_checkpoints": len(set_aside),
        "actor_kills": len(actor_kills),
        "actor_restarted": actor_restarted,
        "reports_never_went_down": all(b >= a for a, b in itertools.pairwise(report_counts)),
    }


def run_soak(cfg: argparse.Namespace, storage: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int, float]:
    rng = random.Random(cfg.seed)
    log_path = storage.with_suffix(".log")
    storage.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as out:
        league = subprocess.Popen(league_command(cfg, storage), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        kills: list[dict[str, Any]] = []
        counts: list[int] = []
        next_kill = started + cfg.kill_every * rng.uniform(0.7, 1.3)
        while league.poll() is None:
            time.sleep(1.0)
            if (count := reports_in(storage)) is not None:
                counts.append(count)
            now = time.monotonic()
            if now >= next_kill and now - started < cfg.minutes * 60:
                if (kill := kill_one(storage, rng, started)) is not None:
                    kills.append(kill)
                    print(f"[{kill['at_s']:7.1f} s] SIGKILL {kill['victim']} (pid {kill['pid']})", flush=True)
                next_kill = now + cfg.kill_every * rng.uniform(0.7, 1.3)
    wall = time.monotonic() - started
    return check_league(storage, kills, counts, cfg.segments, cfg.segment_steps), kills, league.returncode, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of kills (default 10)")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills, +-30%% (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segments", type=int, default=32, help="segments per role (default 32: outlasts 10 min)")
    parser.add_argument("--segment-steps", type=int, default=65_536)
    parser.add_argument("--save-freq", type=int, default=16_384)
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--storage", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny league for 2 minutes, a kill every 25 s")
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    if not ray_available():
        print("league_soak needs Ray: pip install -r requirements-scale.txt")
        return 2
    if cfg.smoke:
        cfg.minutes, cfg.kill_every, cfg.segments, cfg.segment_steps, cfg.save_freq = 2.0, 25.0, 4, 8192, 2048
    storage = (cfg.storage or REPO / "checkpoints" / "league_soak" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    checks, kills, exit_status, wall = run_soak(cfg, storage)
    rows = [
        ("soak wall time (min)", f"{wall / 60:.1f}", f">= {cfg.minutes:g} of kills"),
        ("league command's exit status", str(exit_status), "0"),
        ("roles that finished every segment", f"{checks['roles_finished']} of {len(ROLES)}", "all"),
        (
            "segments reported per role",
            ", ".join(f"{role} {n}" for role, n in checks["segments_reported"].items()),
            f"{cfg.segments} each",
        ),
        ("learner kills / league actor kills", f"{checks['learner_kills']} / {checks['actor_kills']}", "~1 a minute"),
        (
            "learner kills that resumed from their last checkpoint",
            f"{checks['resumed_from_last_checkpoint']} of {checks['learner_kills_with_checkpoint']}",
            "all",
        ),
        ("set-aside attempts holding a checkpoint", str(checks["attempts_set_aside_with_checkpoints"]), "0"),
        ("league actor came back after each kill", str(checks["actor_restarted"]), "True"),
        ("reports in league.json never went down", str(checks["reports_never_went_down"]), "True"),
        ("admissions (admit events)", f"{checks['admissions']} ({checks['admit_events']})", "equal"),
        ("admissions lost / duplicated", f"{checks['admissions_lost']} / {checks['admissions_duplicated']}", "0 / 0"),
        ("exploiter resets", str(checks["resets"]), "-"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>24}  target")
    for what, value, target in rows:
        print(f"{what:<{width}}  {value:>24}  {target}")
    missed = []
    if wall < cfg.minutes * 60:
        missed.append(f"the league ended after {wall / 60:.1f} min, before {cfg.minutes:g} min of kills")
    if exit_status != 0:
        missed.append(f"the league command exited {exit_status} (see {storage.with_suffix('.log')})")
    if checks["roles_finished"] != len(ROLES):
        missed.append("a role did not finish")
    if checks["resumed_from_last_checkpoint"] != checks["learner_kills_with_checkpoint"]:
        missed.append("a killed learner did not resume from its last checkpoint")
    if checks["attempts_set_aside_with_checkpoints"]:
        missed.append("a folder with checkpoints was set aside")
    if not (checks["actor_restarted"] and checks["reports_never_went_down"]):
        missed.append("the league actor lost state")
    if checks["admissions_lost"] or checks["admissions_duplicated"] or checks["pool_not_admitted"]:
        missed.append("an admission was lost or duplicated")
    print(f"storage: {storage}")
    results = {"minutes": cfg.minutes, "wall_s": round(wall, 1), "kills": kills, **checks}
    return finish(cfg, "league_soak", results, missed)


if __name__ == "__main__":
    sys.exit(main())
