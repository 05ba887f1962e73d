"""user/scale.py (issue 17): sweeps and ratings past one machine. Plans, results, canonical Elo order,
retried trials and portable exceptions without Ray; then, when Ray is installed, one local Ray (2 CPUs)
shared by the Ray tests."""

from __future__ import annotations

import csv
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from environment.agents import make_agent
from environment.checkpoints import CheckpointError, CheckpointNotFoundError
from environment.evaluation import EloRatings, EvaluationStopped, rate_round_robin, round_robin, round_robin_row
from tests.test_train_agent import tiny_config
from user import scale
from user import train_agent as T
from user.config_tools import ConfigError
from user.monitoring import DivergenceError

REPO = Path(__file__).resolve().parents[1]
# Two checkpoints (128, 256), one evaluation (256): the smallest run that reports twice.
SHORT = {"training__total_timesteps": 256}


def policy_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return T.load_agent(run_dir).policy.state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def league_mode_table(run_dir: Path, out: Path, episodes: int, frames: int) -> str:
    """The trainer's local `--mode league` table, as a file's text."""
    command = [sys.executable, "user/train_agent.py", "--mode", "league", "--run", str(run_dir)]
    command += ["--episodes", str(episodes), "--max-timesteps", str(frames), "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out.read_text()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A finished tiny run with snapshots at 128 and 256, for the ratings."""
    run_dir = tmp_path_factory.mktemp("scale") / "short"
    T.run_training_loop(tiny_config(**SHORT), run_dir, progress=False)
    return run_dir


# --- without Ray ---------------------------------------------------------------------------
def test_a_sweep_plan_is_every_seed_for_every_override_set():
    grid = [["agent.ent_coef=0.02"], ["agent.ent_coef=0.005", "agent.n_epochs=2"]]
    trials = scale.plan_sweep(tiny_config(), [3, 1], grid)
    assert [t["name"] for t in trials] == ["set0_seed3", "set0_seed1", "set1_seed3", "set1_seed1"]
    assert [t["config"]["training"]["seed"] for t in trials] == [3, 1, 3, 1]
    assert [t["config"]["agent"]["ent_coef"] for t in trials] == [0.02, 0.02, 0.005, 0.005]
    assert trials[2]["config"]["agent"]["n_epochs"] == 2 and trials[0]["config"]["agent"]["n_epochs"] == 1
    assert trials[3]["overrides"] == grid[1]
    only = scale.plan_sweep(tiny_config(training__seed=7), None, None)
    assert [(t["name"], t["seed"], t["overrides"]) for t in only] == [("set0_seed7", 7, [])]
    json.dumps(trials)  # experiment.json holds them


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scale.parse_seeds(["0,1", "1"]), "--seeds repeats 1"),
        (lambda: scale.parse_seeds(["x"]), "--seeds: 'x' is not an integer"),
        (lambda: scale.plan_sweep(tiny_config(), [0], [["agent.ent_coef"]]), "--grid expects key.path=value"),
        (lambda: scale.plan_sweep(tiny_config(), [0], [["agent.nope=1"]]), "unknown config key 'agent.nope'"),
        (
            lambda: scale.plan_sweep(tiny_config(), [0], [["agent.batch_size=100"]]),
            "agent.batch_size (100) must divide",
        ),
        (lambda: scale.pick_backend("local", "10.0.0.5:6379"), "--ray-address needs --backend ray"),
        (lambda: scale.parse_segments(["coach=1"]), "--segments expects ROLE=COUNT once per role"),
        (lambda: scale.parse_segments(["main=2", "main=3"]), "--segments expects ROLE=COUNT once per role"),
        (lambda: scale.run_sweep(Path("nowhere"), [], "local", parallel=0), "--parallel must be a positive integer"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ConfigError) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_line_stops_on_bad_input_with_one_line(tmp_path, capsys):
    storage = tmp_path / "sweep"
    storage.mkdir()
    (storage / "experiment.json").write_text('{"kind": "sweep", "trials": []}')
    for argv, message in (
        (["sweep", "--seeds", "0", "0", "--backend", "local"], "--seeds repeats 0"),
        (["sweep", "--storage", str(storage), "--backend", "local", "--config", "test"], "already holds an experiment"),
        (["sweep", "--storage", str(tmp_path / "none"), "--resume", "--backend", "local"], "holds no experiment"),
        (["sweep", "--resume", "--seeds", "1", "--storage", str(storage), "--backend", "local"], "drop the grid flags"),
        (["search", "--backend", "local", "--param", "agent.ent_coef=uniform:1:0"], "need LOW < HIGH"),
        (["pbt", "--backend", "local", "--interval", "256"], "pbt runs on Ray only"),
        (["rate", str(tmp_path / "gone"), "--backend", "local"], "run folder not found"),
        (["league", "--backend", "local", "--segments", "main=2"], "--segments/--segment-steps need Ray"),
        (["rate", str(tmp_path), "--backend", "local", "--episodes", "0"], "--episodes must be a positive integer"),
    ):
        assert scale.main(argv) == 2, argv
        out = capsys.readouterr()
        errors = [line for line in (out.out + out.err).splitlines() if "ERROR" in line]
        assert len(errors) == 1 and message in errors[0], (argv, out.out + out.err)
    # As a script: the same one line, no traceback.
    done = subprocess.run(
        [sys.executable, "user/scale.py", "sweep", "--seeds", "x", "--backend", "local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "ERROR --seeds: 'x' is not an integer" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_results_keep_one_row_per_trial_and_step_and_plot_each_trial(tmp_path):
    def row(trial, step, worst):
        evaluated = step if worst is not None else None
        return {"trial": trial, "seed": 0, "overrides": "agent.ent_coef=0.01", "step": step, "worst_win_rate": worst,
                "mean_win_rate": worst, "evaluated_at": evaluated, "elo": None, "steps_per_s": 100.0,
                "ep_rew_mean": -1.5, "checkpoint": f"/x/{trial}/rl_model_{step}_steps.zip"}  # fmt: skip

    reports = tmp_path / "reports"
    reports.mkdir()
    lines = [row("a", 128, None), row("a", 256, 0.25), row("a", 256, 0.5)]  # 256 reported again by a retry
    (reports / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"trial": "a", "st')  # torn
    scale.append_report(reports / "a.jsonl", row("a", 384, 0.5))  # after the torn line: kept whole
    (reports / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [row("b", 256, 0.75), row("b", 128, 0.5)]))
    rows = scale.finish_results(tmp_path, ["a", "b", "never_reported"])
    with open(tmp_path / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == scale.RESULT_COLUMNS
    assert [(r["trial"], r["step"], r["worst_win_rate"]) for r in table] == [
        ("a", "128", ""),
        ("a", "256", "0.5"),
        ("a", "384", "0.5"),
        ("b", "128", "0.5"),
        ("b", "256", "0.75"),
    ]
    assert scale.best_trial(rows) == "b"
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_round_robin_rows_are_applied_in_canonical_order():
    """Row i holds names[i]'s results against every later name; Elo takes them row by row, match by match."""
    names = ["constant", "based", "aggressive"]
    rows = [{"based": ["win", "loss"], "aggressive": ["draw"]}, {"aggressive": ["win"]}]
    expected = EloRatings()
    expected.update_from_results("constant", "based", ["win", "loss"])
    expected.update_from_results("constant", "aggressive", ["draw"])
    expected.update_from_results("based", "aggressive", ["win"])
    elo, pairs = rate_round_robin(names, rows)
    assert elo.ratings == expected.ratings and elo.games == {"constant": 3, "based": 3, "aggressive": 2}
    assert [(p["a"], p["b"], p["wins"], p["draws"], p["losses"]) for p in pairs] == [
        ("constant", "based", 1, 0, 1),
        ("constant", "aggressive", 0, 1, 0),
        ("based", "aggressive", 1, 0, 0),
    ]
    with pytest.raises(ValueError, match="must hold"):
        rate_round_robin(names, [{"aggressive": ["draw"], "based": ["win"]}, {"aggressive": ["win"]}])
    with pytest.raises(ValueError, match="has 2 rows"):
        rate_round_robin(names, rows[:1])
    # The local round robin is these rows applied this way (fresh agents: bots carry a random stream).
    played, _ = round_robin({n: make_agent(n) for n in names}, matches_per_pair=2, max_timesteps=120, seed=3)
    agents = {n: make_agent(n) for n in names}
    rows = [
        round_robin_row(agents[a], {b: agents[b] for b in names[i + 1 :]}, 2, 120, 3, i)
        for i, a in enumerate(names[:-1])
    ]
    assert rate_round_robin(names, rows)[0].ratings == played.ratings


def test_project_exceptions_unpickle_in_a_process_without_the_project(tmp_path):
    """Problem 4 of issue 17: a Ray driver that has not imported the project gets a builtin exception."""
    errors = [
        ConfigError("agent.nope is unknown"),
        CheckpointError("rl_model_9_steps.zip is damaged"),
        CheckpointNotFoundError("no such checkpoint"),
        DivergenceError("non-finite loss"),
        EvaluationStopped("stop"),
        scale.TrialCrash("crash"),
    ]
    script = (
        "import pickle, sys\n"
        "assert not any(m.split('.')[0] in ('environment', 'user') for m in sys.modules)\n"
        "for e in pickle.load(sys.stdin.buffer):\n"
        "    print(type(e).__name__, '|', e)\n"
        "assert not any(m.split('.')[0] in ('environment', 'user') for m in sys.modules)\n"
    )
    # -I -S: no site-packages (the editable install), no current directory, no PYTHONPATH.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], input=pickle.dumps(errors), capture_output=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        "ValueError | ConfigError: agent.nope is unknown",
        "Exception | CheckpointError: rl_model_9_steps.zip is damaged",
        "FileNotFoundError | CheckpointNotFoundError: no such checkpoint",
        "RuntimeError | DivergenceError: non-finite loss",
        "Exception | EvaluationStopped: stop",
        "RuntimeError | TrialCrash: crash",
    ]


def test_a_failed_trial_run_again_continues_from_its_checkpoint_to_the_same_weights(tmp_path):
    """Problem 3 of issue 17, without Ray: a trial that crashed after its first checkpoint continues from it
    (bit for bit); one that crashed before any sets its half-written folder aside, whole."""
    trials = scale.plan_sweep(tiny_config(**SHORT), [0], None)
    scale.write_experiment(tmp_path, "sweep", trials)
    straight = tmp_path / "straight"
    T.run_training_loop(tiny_config(**SHORT), straight, progress=False)
    trial = {**trials[0], "crash_once": str(tmp_path / "crashed")}
    with pytest.raises(scale.TrialCrash, match="after step 128"):
        scale.run_trial(trial, tmp_path)
    run_dir = scale.run_dir_of(tmp_path, "set0_seed0")
    assert scale.newest_checkpoint_step(run_dir) == 128
    scale.run_trial(trial, tmp_path)  # the marker exists: no second crash
    assert scale.newest_checkpoint_step(run_dir) == 256
    assert same_weights(policy_weights(run_dir), policy_weights(straight))
    steps = [r["step"] for r in scale.read_reports(scale.reports_of(tmp_path, "set0_seed0"))]
    assert steps == [128, 256]
    scale.run_trial(trial, tmp_path)  # finished: nothing runs again
    assert [r["step"] for r in scale.read_reports(scale.reports_of(tmp_path, "set0_seed0"))] == [128, 256]
    # A folder with logs but no checkpoint (a crash before the first save) is moved aside, not deleted.
    half = scale.run_dir_of(tmp_path, "half")
    half.mkdir(parents=True)
    (half / "monitor.csv").write_text("#{}\nr,l,t\n")
    assert scale.set_aside(half) == half.with_name("half.attempt1")
    assert (half.with_name("half.attempt1") / "monitor.csv").exists() and not half.exists()


def test_local_rate_equals_the_league_mode(short_run, tmp_path):
    table = scale.rate_runs([short_run], tmp_path / "rate", "local", matches=1, max_timesteps=60)
    assert {"rl_model_128", "rl_model_256", "based"} <= {r["name"] for r in table}
    league = league_mode_table(short_run, tmp_path / "league.csv", episodes=1, frames=60)
    assert (tmp_path / "rate" / "league.csv").read_text() == league
    # --resume reuses the rows it kept; a different plan in the same storage is refused.
    again = scale.rate_runs([short_run], tmp_path / "rate", "local", matches=1, max_timesteps=60, resume=True)
    assert again == table
    with pytest.raises(ConfigError, match="rates other players or settings"):
        scale.rate_runs([short_run], tmp_path / "rate", "local", matches=2, max_timesteps=60, resume=True)
    with pytest.raises(ConfigError, match="already holds a rating"):
        scale.rate_runs([short_run], tmp_path / "rate", "local", matches=1, max_timesteps=60)


@pytest.mark.slow  # two trainer subprocesses (15-27 s here, more on a busy machine)
def test_a_local_sweep_runs_its_trials_as_subprocesses_and_writes_results(tmp_path):
    storage = tmp_path / "sweep"
    command = [sys.executable, "user/scale.py", "sweep", "--backend", "local", "--storage", str(storage)]
    command += ["--config", "test", "--seeds", "0", "1", "--parallel", "2"]
    for item in [*scale_sets(), "training.total_timesteps=256"]:
        command += ["--set", item]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(storage / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["trial"], r["step"]) for r in table] == [
        ("set0_seed0", "128"),
        ("set0_seed0", "256"),
        ("set0_seed1", "128"),
        ("set0_seed1", "256"),
    ]
    assert all(r["worst_win_rate"] != "" for r in table if r["step"] == "256")
    assert (storage / "results.png").exists() and (storage / "runs" / "set0_seed1" / "rl_model_256_steps.zip").exists()


def scale_sets() -> list[str]:
    from tests.test_train_agent import TINY_SETS

    return TINY_SETS


# --- on Ray ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the module: 2 CPUs, bound to 127.0.0.1, its files in the clone (removed after)."""
    ray = pytest.importorskip("ray")
    temp = REPO / "checkpoints" / "ray_tmp_tests"
    with scale.ray_session(None, num_cpus=2, temp_dir=temp):
        yield ray
    shutil.rmtree(temp, ignore_errors=True)


def test_a_tune_trial_that_crashes_is_retried_and_ends_with_the_uninterrupted_weights(ray_instance, tmp_path):
    """Three tiny Tune trials; the twin of seed 0 crashes after its first checkpoint and Tune retries it."""
    storage = tmp_path / "sweep"
    trials = scale.plan_sweep(tiny_config(**SHORT), [0, 1], None)
    twin = {**trials[0], "name": "twin_seed0", "crash_once": str(tmp_path / "crashed")}
    rows = scale.run_sweep(storage, [*trials, twin], "ray", parallel=2, max_failures=1)
    assert (tmp_path / "crashed").read_text() == "crashed after step 128\n"
    runs = storage / "runs"
    assert same_weights(policy_weights(runs / "twin_seed0"), policy_weights(runs / "set0_seed0"))
    assert not same_weights(policy_weights(runs / "set0_seed1"), policy_weights(runs / "set0_seed0"))
    assert [(r["trial"], r["step"]) for r in rows] == [
        (name, step) for name in ("set0_seed0", "set0_seed1", "twin_seed0") for step in (128, 256)
    ]
    assert (storage / "results.png").exists() and (storage / "tune").is_dir()
    log = (runs / "twin_seed0" / "training.log").read_text()
    assert "Resuming" in log and "from step 128" in log


def test_distributed_rate_equals_the_league_mode_with_a_task_killed(ray_instance, short_run, tmp_path):
    """The rows run as Ray tasks; the first task's worker dies once (os._exit) and Ray retries it."""
    marker = tmp_path / "killed"
    scale.rate_runs([short_run], tmp_path / "rate", "ray", matches=1, max_timesteps=60, crash_marker=str(marker))
    assert marker.exists()
    league = league_mode_table(short_run, tmp_path / "league.csv", episodes=1, frames=60)
    assert (tmp_path / "rate" / "league.csv").read_text() == league


def league_invariants(storage: Path) -> dict:
    """league.json after a league: every segment reported once and in order, every admission recorded
    once as a player and an event, every reported checkpoint on disk. Returns the state."""
    state = json.loads((storage / "league.json").read_text())
    for role, reports in state["reports"].items():
        assert [r["segment"] for r in reports] == list(range(state["rules"]["segments"][role])), role
        assert [r["step"] for r in reports] == sorted(r["step"] for r in reports), role  # steps only grow
    admitted = [r["decision"]["player"] for rs in state["reports"].values() for r in rs if r["decision"]["admitted"]]
    admits = [e["player"] for e in state["events"] if e["event"] == "admit"]
    assert sorted(admits) == sorted(admitted) == sorted(p["name"] for p in state["players"])
    assert len(set(admits)) == len(admits)
    for reports in state["reports"].values():
        for report in reports:
            assert Path(report["checkpoint"]).exists()
    return state


def test_the_league_goes_on_when_its_actor_is_killed_and_loses_no_admission(ray_instance, tmp_path):
    """A main agent and a main exploiter on Ray; the league actor's process is SIGKILLed after the first
    admission. Ray restarts it, it reloads league.json, and the league finishes with every report and
    admission recorded once."""
    import os
    import signal
    import threading

    storage = tmp_path / "league"
    rules = {"segments": {"main": 3, "main_exploiter": 2}, "segment_steps": 128, "eval_matches": 2}
    killed: list[int] = []

    def kill_the_actor_after_the_first_admission() -> None:
        path = storage / "league.json"
        for _ in range(600):
            if path.exists() and json.loads(path.read_text() or "{}").get("players"):
                pid = int(scale.pid_file(storage, scale.LEAGUE_ACTOR).read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            threading.Event().wait(0.2)

    killer = threading.Thread(target=kill_the_actor_after_the_first_admission, daemon=True)
    killer.start()
    base = tiny_config(eval__max_timesteps=60, eval__eval_freq=128)
    table = scale.run_league(storage, base, rules, max_failures=1)
    killer.join(timeout=5)
    assert killed, "the actor was never killed"
    restarted = int(scale.pid_file(storage, scale.LEAGUE_ACTOR).read_text())
    assert restarted != killed[0]  # a new actor process wrote its pid after the kill
    state = league_invariants(storage)
    assert {row["name"] for row in table} == {p["name"] for p in state["players"]}
    assert (storage / "league.csv").read_text().startswith("name,role,step,elo,games\n")
    rows = list(csv.DictReader((storage / "results.csv").open()))
    assert {row["trial"].split("/")[0] for row in rows} == {"main", "main_exploiter"}
    # --resume of a finished league trains nothing more and gives the same table; a new league
    # in the same storage is refused.
    assert scale.run_league(storage, None, None, max_failures=0, resume=True) == table
    assert json.loads((storage / "league.json").read_text()) == state
    with pytest.raises(ConfigError, match="already holds an experiment"):
        scale.run_league(storage, base, rules)


@pytest.mark.slow
def test_the_local_league_is_one_run_with_the_trainers_exploiter_phases(tmp_path):
    """Without Ray, `league` trains the main agent with exploiter phases (controls.exploiter)."""
    from tests.test_train_agent import TINY_SETS

    storage = tmp_path / "league"
    sets = [*TINY_SETS, "training.total_timesteps=384", "controls.exploiter.steps=64"]  # 3 updates of 128
    sets += ["controls.exploiter.eval_matches=2"]
    argv = ["league", "--backend", "local", "--storage", str(storage), "--config", "test", "--exploiter-every", "1"]
    assert scale.main(argv + [arg for item in sets for arg in ("--set", item)]) == 0
    run_dir = storage / "runs" / "main"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["controls"]["exploiter"]["every_updates"] == 1
    phases = list(csv.DictReader((run_dir / "exploiters.csv").open()))
    assert [row["step"] for row in phases] == ["128", "256"]  # after updates 1 and 2
    assert all(row["admitted"] in ("True", "False") for row in phases)
    rows = list(csv.DictReader((storage / "results.csv").open()))
    assert [(row["trial"], row["step"]) for row in rows] == [("main", "128"), ("main", "256"), ("main", "384")]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_sweep_joins_a_cluster_started_apart_which_stops_on_its_own_signal(ray_instance, tmp_path):
    """A two-process local cluster: `ray start --head --block` as its own process, a sweep driver joining
    it with --ray-address; then only the process the test started is signalled, and the cluster is gone."""
    import signal
    import time

    from tests.test_train_agent import TINY_SETS

    port = free_port()
    temp = REPO / "checkpoints" / f"ray_c{port}"  # short: Ray's sockets live below it
    ray_cli = Path(sys.executable).parent / "ray"
    head_command = [str(ray_cli), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    head_command += [
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--temp-dir",
        str(temp),
        "--disable-usage-stats",
    ]
    head = subprocess.Popen(head_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not accepts(port):
            assert head.poll() is None and time.monotonic() < deadline, "the head did not start"
            time.sleep(0.5)
        storage = tmp_path / "sweep"
        sets = [*TINY_SETS, "training.total_timesteps=256"]
        driver = [sys.executable, "-m", "user.scale", "sweep", "--ray-address", f"127.0.0.1:{port}"]
        driver += ["--storage", str(storage), "--config", "test", "--seeds", "0"]
        driver += [arg for item in sets for arg in ("--set", item)]
        done = subprocess.run(driver, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Ray up" in done.stdout + done.stderr and f"127.0.0.1:{port}" in done.stdout + done.stderr
        rows = list(csv.DictReader((storage / "results.csv").open()))
        assert [(r["trial"], r["step"]) for r in rows] == [("set0_seed0", "128"), ("set0_seed0", "256")]
    finally:
        head.send_signal(signal.SIGTERM)  # only the process this test started
        head.wait(timeout=60)
    deadline = time.monotonic() + 30
    while accepts(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not accepts(port), "the cluster's head still listens after its process was stopped"
    assert ray_instance.is_initialized()  # the tests' own Ray is untouched
    shutil.rmtree(temp, ignore_errors=True)


def test_every_flag_in_the_readmes_scale_section_exists():
    from tests.test_docs import SCALE_SECTION

    section = SCALE_SECTION.search((REPO / "README.md").read_text()).group(0)
    subcommands = next(a for a in scale.build_parser()._actions if a.dest == "command").choices
    helps = "".join(subcommands[sub].format_help() for sub in ("sweep", "rate", "search", "pbt", "league"))
    trainer = T.build_arg_parser(list(T.CONFIGS)).format_help()
    ray_cli = {"--generate", "--head", "--node-ip-address", "--port", "--include-dashboard", "--address"}
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z_-]+)", section)) - ray_cli
    assert {"--storage", "--resume", "--backend", "--ray-address", "--grid", "--seeds", "--param", "--trials"} <= flags
    for flag in sorted(flags):
        assert flag in helps or flag in trainer, f"{flag} is named in the README's scale section but no --help lists it"


def test_a_failed_sweep_restored_with_resume_continues_from_its_last_checkpoint(ray_instance, tmp_path):
    """The experiment errors (no retries left), then `sweep --resume` restores it through Tune: the trial
    continues from its checkpoint at 128, not from step 0, and ends with the uninterrupted run's weights."""
    storage = tmp_path / "sweep"
    trials = scale.plan_sweep(tiny_config(**SHORT), [0], None)
    trials[0]["crash_once"] = str(tmp_path / "crashed")
    with pytest.raises(ConfigError, match=r"1 trial\(s\) failed: set0_seed0; fix the cause, then --resume"):
        scale.run_sweep(storage, trials, "ray", parallel=1, max_failures=0)
    run_dir = storage / "runs" / "set0_seed0"
    assert scale.newest_checkpoint_step(run_dir) == 128
    assert scale.main(["sweep", "--resume", "--storage", str(storage), "--backend", "ray"]) == 0
    assert scale.newest_checkpoint_step(run_dir) == 256
    assert "Resuming" in (run_dir / "training.log").read_text()
    straight = tmp_path / "straight"
    T.run_training_loop(tiny_config(**SHORT), straight, progress=False)
    assert same_weights(policy_weights(run_dir), policy_weights(straight))
    with open(storage / "results.csv", newline="") as fh:
        assert [r["step"] for r in csv.DictReader(fh)] == ["128", "256"]


# --- search ------------------------------------------------------------------------------------
def test_search_params_parse_and_bad_ones_are_named():
    assert scale.parse_param("agent.learning_rate=loguniform:1e-5:1e-3") == (
        "agent.learning_rate",
        {"kind": "loguniform", "low": 1e-5, "high": 1e-3},
    )
    assert scale.parse_param("agent.n_epochs=int:1:3") == ("agent.n_epochs", {"kind": "int", "low": 1, "high": 3})
    assert scale.parse_param("agent.net_arch=choice:[{pi: [16], vf: [16]}, {pi: [8], vf: [8]}]")[1]["choices"][1] == {
        "pi": [8],
        "vf": [8],
    }
    for item, message in (
        ("agent.ent_coef", "--param expects key.path=KIND:ARGS"),
        ("agent.ent_coef=normal:0:1", "unknown kind 'normal'"),
        ("agent.ent_coef=uniform:0.1:0.01", "need LOW < HIGH"),
        ("agent.ent_coef=loguniform:0:1", "and LOW > 0"),
        ("agent.n_epochs=int:1:x", "int needs LOW:HIGH numbers"),
        ("agent.batch_size=choice:512", "choice needs a YAML list"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            scale.parse_param(item)
    with pytest.raises(ConfigError, match="unknown config key 'agent.nope'"):
        scale.plan_search(tiny_config(), ["agent.nope=uniform:0:1"], 2)
    with pytest.raises(ConfigError, match="--trials must be a positive integer"):
        scale.plan_search(tiny_config(), ["agent.ent_coef=uniform:0:0.1"], 0)
    experiment = scale.plan_search(tiny_config(**SHORT), ["agent.ent_coef=uniform:0:0.1", "agent.n_epochs=int:1:2"], 2)
    trial = scale.sampled_trial(experiment, "trial_000", {"agent.ent_coef": 0.05, "agent.n_epochs": 2})
    assert trial["config"]["agent"]["ent_coef"] == 0.05 and trial["config"]["agent"]["n_epochs"] == 2
    assert trial["overrides"] == ["agent.ent_coef=0.05", "agent.n_epochs=2"]


SEARCH_SPACE = ["agent.ent_coef=uniform:0.0:0.05", "agent.learning_rate=loguniform:1e-4:1e-3"]


def check_search(storage: Path, names: list[str]) -> None:
    with open(storage / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["trial"], r["step"]) for r in table] == [(n, s) for n in names for s in ("128", "256")]
    for name in names:
        trial = scale.trial_named(storage, name)
        assert 0.0 <= trial["params"]["agent.ent_coef"] <= 0.05
        assert 1e-4 <= trial["config"]["agent"]["learning_rate"] <= 1e-3
        assert (storage / "runs" / name / "rl_model_256_steps.zip").exists()


@pytest.mark.slow  # two trainer subprocesses
def test_a_local_search_samples_with_optuna_and_runs_its_trials_as_subprocesses(tmp_path):
    optuna = pytest.importorskip("optuna")
    storage = tmp_path / "search"
    experiment = scale.plan_search(tiny_config(**SHORT), SEARCH_SPACE, 2)
    scale.run_search(storage, experiment, "local", parallel=2, seed=3)
    check_search(storage, ["trial_000", "trial_001"])
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{storage / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_a_search_on_ray_samples_with_optunasearch(ray_instance, tmp_path):
    pytest.importorskip("optuna")
    storage = tmp_path / "search"
    experiment = scale.plan_search(tiny_config(**SHORT), SEARCH_SPACE, 2)
    scale.run_search(storage, experiment, "ray", parallel=2, seed=3)
    names = scale.sampled_trial_names(storage)
    assert len(names) == 2 and all(n.startswith("trial_") for n in names)
    check_search(storage, names)


# --- pbt ---------------------------------------------------------------------------------------
def test_pbt_mutates_only_what_a_resume_accepts_and_an_adopted_checkpoint_continues_exactly(short_run, tmp_path):
    experiment = scale.plan_pbt(tiny_config(**SHORT), 2, ["agent.ent_coef=uniform:0:0.05"])
    assert [(t["name"], t["seed"]) for t in experiment["trials"]] == [("member0", 0), ("member1", 1)]
    for item, message in (
        ("agent.n_steps=choice:[32, 64]", "--mutate agent.n_steps: a resumed run cannot change it"),
        ("training.seed=int:0:5", "--mutate training.seed: a resumed run cannot change it"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            scale.plan_pbt(tiny_config(**SHORT), 2, [item])
    with pytest.raises(ConfigError, match="--population must be at least 2"):
        scale.plan_pbt(tiny_config(**SHORT), 1, ["agent.ent_coef=uniform:0:0.05"])
    # The exploit: a member's own folder moved aside, the source's run taken from its step 128, resumed to
    # the source's end with the source's weights (the same seed and values: bit for bit).
    member = tmp_path / "runs" / "member1"
    member.mkdir(parents=True)
    (member / "monitor.csv").write_text("#{}\nr,l,t\n")
    scale.adopt_checkpoint(member, short_run, 128)
    assert (tmp_path / "runs" / "member1.attempt1" / "monitor.csv").exists()
    assert scale.newest_checkpoint_step(member) == 128 and not (member / "rl_model_256_steps.zip").exists()
    T.resume_training(member, progress=False)
    assert same_weights(policy_weights(member), policy_weights(short_run))


@pytest.mark.slow  # about 30 s: two members restarted at each interval
def test_pbt_on_ray_copies_the_better_member_and_mutates(ray_instance, tmp_path):
    storage = tmp_path / "pbt"
    experiment = scale.plan_pbt(tiny_config(training__total_timesteps=512), 2, ["agent.ent_coef=uniform:0:0.05"])
    rows = scale.run_pbt(storage, experiment, interval=256, quantile=0.5, max_failures=1, synch=True)
    for name in ("member0", "member1"):
        assert scale.newest_checkpoint_step(storage / "runs" / name) == 512
    assert {r["trial"] for r in rows} == {"member0", "member1"}
    # At each interval the worse member (of 2, quantile 0.5) takes the better one's run (its own folder moved
    # aside) and goes on with a mutated value.
    exploited = sorted(p.name for p in (storage / "runs").glob("member*.attempt*"))
    assert exploited, "no member took another's run"
    member = exploited[0].split(".")[0]
    values = [r["overrides"] for r in rows if r["trial"] == member]
    assert len(set(values)) > 1 and all(v.startswith("agent.ent_coef=") for v in values)
    assert all(0.0 <= float(v.split("=")[1]) <= 0.05 for v in values)


@pytest.mark.slow  # ten tiny trainer runs as subprocesses, two local Ray instances of its own
def test_the_scale_speed_benchmark_runs_its_four_sweeps(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/scale_speed.py", "--smoke", "--out", str(tmp_path / "sweeps"), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["sequential_s"] > 0 and figures["ray_s"] > 0 and figures["speedup"] > 0
    runs = sorted(p.name for p in (tmp_path / "sweeps" / "ray" / "runs").iterdir())
    assert runs == [f"set0_seed{s}" for s in range(4)]
