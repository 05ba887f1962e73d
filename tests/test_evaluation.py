"""Evaluation helpers: batched matches, summaries, success table, Elo, latent analysis, plots."""

from __future__ import annotations

import math
import warnings

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from environment import params as P
from environment.agents import Agent, ScriptedAgent, make_agent
from environment.engine import StepEvents
from environment.evaluation import (
    SUCCESS_CRITERIA,
    EloRatings,
    EvalRow,
    SelfDestructCounter,
    best_steps_by_headline,
    format_table,
    headline_line,
    latent_distances,
    play_vs_opponents,
    project_2d,
    public_bot_names,
    round_robin,
    separation_verdict,
    success_table,
    summarize,
    wilson_interval,
    worst_public_win_rate,
)
from environment.match import play_matches
from environment.rewards import default_reward_manager
from user.plots import plot_latent_scatter, plot_training_curves, training_curves_figure


class Counting(Agent):
    """Wraps an agent and records every predict_batch call (rows, env_ids)."""

    def __init__(self, inner: Agent):
        super().__init__()
        self.inner, self.calls = inner, []

    def reset(self) -> None:
        self.inner.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        self.calls.append((obs.shape[0], np.array(env_ids, copy=True), np.array(episode_start, copy=True)))
        return self.inner.predict_batch(obs, episode_start, env_ids)


class _Walker(ScriptedAgent):
    """Holds a (walk left) in every frame."""

    def act(self, obs, keys, ids) -> None:
        keys[:, P.K_A] = True


@pytest.fixture(scope="module")
def batched():
    """aggressive (player 0) vs constant and based: matches end at different frames."""
    agent = Counting(make_agent("aggressive"))
    opps = {"constant": Counting(make_agent("constant")), "based": Counting(make_agent("based"))}
    results = play_vs_opponents(agent, opps, 2, max_timesteps=1200, seed=7, reward_manager=default_reward_manager())
    return agent, opps, results


def test_play_vs_opponents_calls_each_agent_once_per_frame_on_live_rows(batched):
    agent, opps, results = batched
    frames = {name: [d["frames"] for d in lst] for name, lst in results.items()}
    all_frames = [f for fs in frames.values() for f in fs]
    assert len(set(all_frames)) > 1, "the test wants matches that end at different times"
    assert len(agent.calls) == max(all_frames)  # one call per frame until the last match ends
    assert sum(rows for rows, _, _ in agent.calls) == sum(all_frames)  # only live rows are fed
    assert agent.calls[0][2].all() and not any(start.any() for _, _, start in agent.calls[1:])
    for j, (name, opp) in enumerate(opps.items()):
        assert len(opp.calls) == max(frames[name])
        assert sum(rows for rows, _, _ in opp.calls) == sum(frames[name])
        ids = np.concatenate([ids for _, ids, _ in opp.calls])
        assert set(ids.tolist()) == {2 * j, 2 * j + 1}  # env_ids are the opponent's own engine rows


def test_play_vs_opponents_equals_play_matches_for_deterministic_bots(batched):
    _, _, results = batched
    for j, (name, lst) in enumerate(results.items()):
        ref = play_matches(make_agent("aggressive"), make_agent(name), 2, max_timesteps=1200, seed=7 + 2 * j)
        for d, r in zip(lst, ref, strict=True):
            assert {k: d[k] for k in ("frames", "player_1", "player_2")} == r.to_dict()
            assert math.isfinite(d["reward"]) and 0 <= d["attack_frames"] <= d["frames"]


def test_play_vs_opponents_rates_are_sane_and_self_play_is_allowed():
    bot = make_agent("based")
    results = play_vs_opponents(bot, {"self": bot, "random": make_agent("random")}, 3, max_timesteps=300, seed=1)
    for name, lst in results.items():
        row = summarize(name, lst)
        assert row.matches == len(lst) == 3
        for rate in (row.win_rate, row.draw_rate, row.loss_rate, row.attack_rate):
            assert 0.0 <= rate <= 1.0
        assert row.win_rate + row.draw_rate + row.loss_rate == pytest.approx(1.0)
        assert math.isnan(row.avg_reward)  # no reward manager


def _match(result, dealt, taken, kos, falls, pickups, frames, reward=1.0, attack=0):
    p1 = {
        "damage_dealt": dealt,
        "damage_taken": taken,
        "knockouts": kos,
        "falls": falls,
        "weapon_pickups": pickups,
        "weapon_drops": 0,
        "hits": 0,
        "combos": 0,
        "stocks_left": 3 - falls,
        "result": result,
    }
    return {"frames": frames, "player_1": p1, "player_2": {}, "reward": reward, "attack_frames": attack}


def test_summarize_math_on_hand_made_stats():
    stats = [
        _match("win", 300.0, 100.0, 3, 0, 2, 1800, reward=10.0, attack=90),  # 60 s, no fall → 60 s
        _match("loss", 50.0, 200.0, 1, 3, 0, 900, reward=-4.0, attack=0),  # 30 s / 3 falls → 10 s
        _match("draw", 100.0, 0.0, 0, 1, 1, 2700, reward=0.0, attack=30),  # 90 s / 1 → 90 s
        _match("win", 150.0, 100.0, 2, 2, 1, 1200, reward=2.0, attack=0),  # 40 s / 2 → 20 s
    ]
    row = summarize("based", stats)
    assert (row.opponent, row.matches) == ("based", 4)
    assert (row.win_rate, row.draw_rate, row.loss_rate) == (0.5, 0.25, 0.25)
    assert row.damage_dealt_per_match == 150.0 and row.damage_taken_per_match == 100.0
    assert row.damage_ratio == pytest.approx(600.0 / 400.0)
    assert row.knockouts_per_match == 1.5 and row.falls_per_match == 1.5 and row.weapon_pickups_per_match == 1.0
    assert row.mean_survival_s == pytest.approx((60 + 10 + 90 + 20) / 4)
    assert row.avg_reward == pytest.approx(2.0)
    assert row.attack_rate == pytest.approx(120 / 6600)
    # Nothing taken: the ratio divides by 1e-6 instead of 0.
    assert summarize("x", [_match("win", 5.0, 0.0, 0, 0, 0, 30)]).damage_ratio == pytest.approx(5.0)  # 1-point floor


def _row(opponent, win_rate, dealt, taken, kos, pickups, survival, matches=10):
    return EvalRow(
        opponent,
        matches,
        win_rate,
        0.0,
        1 - win_rate,
        dealt,
        taken,
        dealt / max(taken, 1e-6),
        kos,
        1.0,
        pickups,
        survival,
        0.0,
        0.1,
    )


def _roster_rows(win_rates: dict[str, float], default: float, **fight) -> list[EvalRow]:
    """One row per public bot: ``win_rates`` where given, else ``default``."""
    fight = {"dealt": 300, "taken": 100, "kos": 2.5, "pickups": 1.5, "survival": 70, **fight}
    return [_row(name, win_rates.get(name, default), **fight) for name in public_bot_names()]


def _by_criterion(rows: list[EvalRow]) -> dict[str, dict]:
    return {t["criterion"].split(" (vs ")[0]: t for t in success_table(rows)}


def test_success_table_pass_and_fail():
    good = _roster_rows({"aggressive": 0.6}, default=0.9)
    table = success_table(good)
    assert [t["criterion"].split(" (vs ")[0] for t in table] == [c[0] for c in SUCCESS_CRITERIA]
    assert all(t["passed"] and t["status"] == "PASS" for t in table), format_table(table)
    assert table[0]["criterion"] == "worst win rate over the public bots (vs aggressive)"
    assert table[0]["value"] == 0.6 and table[0]["target"] == ">= 0.5"

    bad = _roster_rows(
        {"based": 0.85, "zoner": 0.5}, default=0.7, dealt=150, taken=100, kos=2.0, pickups=1.25, survival=65
    )
    table = _by_criterion(bad)
    assert table["worst win rate over the public bots"]["passed"]  # 0.5 meets >= 50 %
    assert not table["mean win rate over the public bots"]["passed"]  # (0.85 + 0.5 + 9 × 0.7) / 11 < 0.7
    assert table["win rate vs based"]["passed"] and table["win rate vs aggressive"]["passed"]  # 0.85, 0.7
    assert not table["damage ratio"]["passed"]  # 1.5
    assert not table["knockouts per episode"]["passed"]  # exactly 2 is not > 2
    assert table["weapon pickups per episode"]["passed"]
    assert table["survival (s)"]["passed"] and table["survival (s)"]["value"] == pytest.approx(65.0)


def test_success_table_does_not_pass_an_agent_that_only_beats_based():
    """Issue 14: a held-k agent wins every match against BasedAgent and loses to the rest."""
    held_k = _roster_rows({"based": 1.0}, default=0.0)
    table = success_table(held_k)
    assert table[0]["status"] == "FAIL" and table[0]["value"] == 0.0  # the headline comes first
    assert _by_criterion(held_k)["win rate vs based"]["status"] == "PASS"


def test_success_table_headline_needs_every_public_bot():
    only_based = _by_criterion([_row("based", 1.0, 1, 1, 3, 3, 99)])
    assert only_based["worst win rate over the public bots"]["status"] == "n/a"
    assert not only_based["worst win rate over the public bots"]["passed"]
    assert only_based["mean win rate over the public bots"]["status"] == "n/a"
    no_based = _by_criterion([_row("zoner", 1.0, 1, 1, 3, 3, 99)])
    assert no_based["win rate vs based"]["status"] == "n/a" and not no_based["win rate vs based"]["passed"]


def test_headline_is_the_worst_public_bot_and_ignores_other_opponents():
    rates = {name: 0.9 for name in public_bot_names()} | {"counter": 0.4, "hold:jump": 0.0, "rl_model_5": 0.1}
    assert worst_public_win_rate(rates) == ("counter", 0.4)
    assert worst_public_win_rate({"hold:jump": 0.0}) is None
    history = [
        {"step": 100, **rates},
        {"step": 200, **rates, "counter": 0.6},
        {"step": 300, **rates, "counter": 0.6},
        {"step": 400, "based": 1.0, "counter": 0.0},
        {"step": 500},
    ]
    assert best_steps_by_headline(history, 2) == [300, 200]  # a later step wins a tie
    assert best_steps_by_headline(history, 10) == [300, 200, 100, 400]  # 500 played no public bot
    line = headline_line(history[:4])
    assert line.startswith("Headline (worst win rate over the public bots): 0% vs counter;")
    assert line.endswith("best checkpoint by it so far: rl_model_300_steps.zip (60% vs counter)")
    assert headline_line(history[:1]).startswith("Headline (worst win rate over the public bots): 40% vs counter")
    assert headline_line([]) == headline_line([{"step": 1}]) == "Headline: no public bot was evaluated"


@pytest.mark.parametrize(("wins", "n", "low", "high"), [
    (0, 10, 0.0, 0.277533), (10, 10, 0.722467, 1.0), (5, 10, 0.236593, 0.763407),
    (81, 263, 0.255289, 0.366210), (1, 100, 0.001767, 0.054486), (7, 20, 0.181192, 0.567146),
])  # fmt: skip
def test_wilson_interval_on_known_counts(wins, n, low, high):
    # Reference: the closed form (2np + z² ∓ z·sqrt(z² + 4np(1−p))) / (2(n + z²)), z = 1.96.
    assert wilson_interval(wins, n) == pytest.approx((low, high), abs=1e-6)


def test_wilson_interval_refuses_impossible_counts():
    for wins, n in ((1, 0), (-1, 5), (6, 5), (2.5, 5)):
        with pytest.raises(ValueError, match="successes"):
            wilson_interval(wins, n)


def _events(n: int, hit=(), knocked_out=()) -> StepEvents:
    """One frame's events; ``hit``/``knocked_out`` list (row, player) pairs."""
    ev = StepEvents.allocate(n)
    for row, player in hit:
        ev.hit[row, player] = True
    for row, player in knocked_out:
        ev.knocked_out[row, player] = True
    return ev


def test_self_destructs_are_knockouts_without_a_recent_hit():
    counter = SelfDestructCounter(3, window=5)
    counter.add(_events(3, knocked_out=[(0, 0)]))  # row 0: player 0 falls with no hit taken at all
    counter.add(_events(3, hit=[(1, 1)]))  # row 1: player 1 hits player 0 ...
    for _ in range(4):
        counter.add(_events(3))
    counter.add(_events(3, knocked_out=[(1, 0)]))  # ... which falls 5 frames later: caused by the hit
    counter.add(_events(3, hit=[(2, 0)]))  # row 2: player 0 hits player 1 ...
    for _ in range(5):
        counter.add(_events(3))
    counter.add(_events(3, knocked_out=[(2, 1)]))  # ... which falls 6 frames later: its own doing
    assert [counter.row_stats(r) for r in range(3)] == [
        {"self_destructs": 1, "opponent_self_destructs": 0},
        {"self_destructs": 0, "opponent_self_destructs": 0},
        {"self_destructs": 0, "opponent_self_destructs": 1},
    ]
    same_frame = _events(3, hit=[(0, 1)], knocked_out=[(0, 0)])  # a hit in the knockout's frame caused it
    counter.clear(np.array([0]))
    counter.add(same_frame)
    assert counter.row_stats(0)["self_destructs"] == 0
    with pytest.raises(ValueError, match="window"):
        SelfDestructCounter(1, window=-1)


def test_play_vs_opponents_alternates_sides_and_slots_and_feeds_trackers():
    counter = SelfDestructCounter(8)
    results = play_vs_opponents(
        make_agent("constant"),
        {"walker": _Walker(), "based": make_agent("based")},
        4,
        max_timesteps=300,
        seed=2,
        alternate_sides=True,
        trackers=[counter],
        alternate_slots=True,
    )
    for matches in results.values():
        assert [d["start_side"] for d in matches] == [1, -1, 1, -1]
        assert [d["agent_slot"] for d in matches] == [0, 0, 1, 1]
    # The walker holds a (left) from either side and slot and walks off the stage: every fall is
    # its own, and player_2 is the walker whichever slot it played.
    walker = results["walker"]
    assert all(d["player_2"]["falls"] >= 1 and d["player_1"]["falls"] == 0 for d in walker)
    assert [d["opponent_self_destructs"] for d in walker] == [d["player_2"]["falls"] for d in walker]
    assert all(d["self_destructs"] == 0 for d in walker)  # the standing agent never falls
    as_agent = play_vs_opponents(
        _Walker(),
        {"constant": make_agent("constant")},
        4,
        max_timesteps=300,
        seed=2,
        alternate_sides=True,
        trackers=[SelfDestructCounter(4)],
        alternate_slots=True,
    )
    assert all(d["self_destructs"] == d["player_1"]["falls"] >= 1 for d in as_agent["constant"])
    drawn = play_vs_opponents(make_agent("constant"), {"based": make_agent("based")}, 8, max_timesteps=10, seed=0)
    assert {d["start_side"] for d in drawn["based"]} == {1, -1}  # by default each match draws its side
    assert {d["agent_slot"] for d in drawn["based"]} == {0}
    with pytest.raises(ValueError, match="reward_manager"):
        play_vs_opponents(
            _Walker(), {"based": make_agent("based")}, 2, reward_manager=default_reward_manager(), alternate_slots=True
        )


def test_play_vs_opponents_takes_a_match_count_per_opponent():
    """The trainer's evaluation plays the roster and its Elo snapshots in one pass, with a count
    each: opponent j's rows follow the matches of those before it, seeded from there."""
    agent = make_agent("based")
    opponents = {"random": make_agent("random", seed=3), "constant": make_agent("constant")}
    mixed = play_vs_opponents(agent, opponents, {"random": 2, "constant": 3}, max_timesteps=200, seed=5)
    assert [len(mixed["random"]), len(mixed["constant"])] == [2, 3]
    assert [d["seed"] for d in mixed["constant"]] == [7, 8, 9]
    alone = play_matches(make_agent("based"), make_agent("constant"), 3, max_timesteps=200, seed=7)
    assert [{k: d[k] for k in ("frames", "player_1", "player_2")} for d in mixed["constant"]] == [
        r.to_dict() for r in alone
    ]
    for bad, problem in (({"random": 2}, "name exactly"), ({"random": 2, "constant": 0}, "> 0")):
        with pytest.raises(ValueError, match=problem):
            play_vs_opponents(agent, opponents, bad, max_timesteps=10)


def test_format_table_aligns_columns():
    text = format_table([{"name": "based", "value": 0.5, "n": 3}, {"name": "x", "value": 12.25, "n": 10}])
    lines = text.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert "0.500" in lines[2] and "12.250" in lines[3]
    assert format_table([]) == "(empty)"


# --- Elo ----------------------------------------------------------------------------
def test_elo_hand_computed_updates():
    elo = EloRatings()
    assert elo.expected("a", "b") == 0.5
    assert elo.update("a", "b", 1.0) == (1016.0, 984.0)

    e = 1 / (1 + 10 ** (-200 / 400))  # 0.7597469266479578: a 1200 player's expectation vs 1000
    for score, ra, rb in [
        (1.0, 1200 + 32 * (1 - e), 1000 - 32 * (1 - e)),  # 1207.688, 992.312
        (0.0, 1200 - 32 * e, 1000 + 32 * e),  # 1175.688, 1024.312
        (0.5, 1200 + 32 * (0.5 - e), 1000 - 32 * (0.5 - e)),
    ]:  # 1191.688, 1008.312
        elo = EloRatings.from_dict({"ratings": {"a": 1200.0, "b": 1000.0}})
        assert elo.expected("a", "b") == pytest.approx(0.7597469266)
        assert elo.update("a", "b", score) == pytest.approx((ra, rb))
    assert (ra, rb) == pytest.approx((1191.688, 1008.312), abs=1e-3)


def test_elo_symmetry_results_and_round_trip():
    one, two = EloRatings(k=24), EloRatings(k=24)
    one.ratings.update(a=1100.0, b=950.0)
    two.ratings.update(a=1100.0, b=950.0)
    one.update("a", "b", 0.0)
    two.update("b", "a", 1.0)
    assert one.ratings == pytest.approx(two.ratings)
    assert sum(one.ratings.values()) == pytest.approx(2050.0)  # zero-sum
    assert one.expected("a", "b") + one.expected("b", "a") == pytest.approx(1.0)

    elo = EloRatings()
    elo.update_from_results("a", "b", ["win", "draw", "loss", "win"])
    manual = EloRatings()
    for s in (1.0, 0.5, 0.0, 1.0):
        manual.update("a", "b", s)
    assert elo.ratings == manual.ratings and elo.games == {"a": 4, "b": 4}
    assert [name for name, _, _ in elo.table()] == ["a", "b"]
    back = EloRatings.from_dict(elo.to_dict())
    assert (back.ratings, back.games, back.k, back.initial) == (elo.ratings, elo.games, elo.k, elo.initial)
    assert back.rating("never-seen") == 1000.0
    with pytest.raises(ValueError, match="result must be one of"):
        elo.update_from_results("a", "b", ["victory"])


def test_round_robin_plays_every_pair():
    names = ["constant", "based", "aggressive"]
    elo, pairs = round_robin({n: make_agent(n) for n in names}, matches_per_pair=2, max_timesteps=200, seed=3)
    assert {(p["a"], p["b"]) for p in pairs} == {
        ("constant", "based"),
        ("constant", "aggressive"),
        ("based", "aggressive"),
    }
    for p in pairs:
        assert p["matches"] == 2 and p["wins"] + p["draws"] + p["losses"] == 2
    assert {name for name, _, _ in elo.table()} == set(names)
    assert all(games == 4 for _, _, games in elo.table())
    assert sum(elo.ratings.values()) == pytest.approx(3000.0)


# --- strategy latents -----------------------------------------------------------------
def test_latent_distances_exact_tiny_example():
    latents = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 2.0]])
    d = latent_distances(latents, ["a", "a", "b", "b"])
    assert d["within"] == pytest.approx(1.0)  # each point is 1 from its centroid (1,0) / (10,1)
    assert d["between"] == pytest.approx(math.sqrt(82))
    assert d["ratio"] == pytest.approx(math.sqrt(82))
    np.testing.assert_allclose(d["centroids"]["b"], [10.0, 1.0])
    assert separation_verdict(d) == f"separates opponents (ratio {math.sqrt(82):.2f} > 1.5)"


def test_latent_distances_separated_vs_identical_clusters():
    rng = np.random.default_rng(0)
    labels = [c for c in "abc" for _ in range(100)]
    centres = np.repeat(np.eye(3, 8) * 20, 100, axis=0)
    separated = latent_distances(centres + rng.normal(size=(300, 8)), labels)
    mixed = latent_distances(rng.normal(size=(300, 8)), labels)
    assert separated["ratio"] > 5
    assert mixed["ratio"] < 0.3
    assert separation_verdict(mixed).startswith("does NOT separate")
    assert "cannot judge" in separation_verdict(latent_distances(rng.normal(size=(5, 3)), ["a"] * 5))


def test_project_2d_pca_and_tsne_fallback():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 6)) * [10, 3, 0.1, 0.1, 0.1, 0.1]
    pts = project_2d(x)
    assert pts.shape == (50, 2)
    assert np.var(pts[:, 0]) > np.var(pts[:, 1]) > 0.5  # first component is the widest axis
    assert project_2d(np.ones((3, 1))).shape == (3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warns (and uses PCA) when scikit-learn is missing
        assert project_2d(x, method="tsne").shape == (50, 2)
    with pytest.raises(ValueError, match="method must be 'pca' or 'tsne'"):
        project_2d(x, method="umap")


def test_plot_latent_scatter_writes_png(tmp_path):
    rng = np.random.default_rng(2)
    path = plot_latent_scatter(rng.normal(size=(30, 2)), ["a", "b", "c"] * 10, tmp_path / "latents.png", "test")
    assert path.is_file() and mpimg.imread(path).shape[0] > 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


# --- training curves ----------------------------------------------------------------
def _write_run(run_dir):
    rng = np.random.default_rng(3)
    lines = ['#{"t_start": 0, "env_id": null}', "r,l,t,win"]
    lines += [
        f"{-50 + i * 0.5 + rng.normal() * 5:.2f},{int(rng.integers(500, 2700))},{i * 3.0:.1f},0" for i in range(200)
    ]
    (run_dir / "monitor.csv").write_text("\n".join(lines) + "\n12.5,90")  # a half-written last line
    steps = [10_000 * k for k in range(1, 6)]
    ev = [
        {
            "step": s,
            "opponent": o,
            "matches": 10,
            "win_rate": min(1.0, k * 0.2 * f),
            "draw_rate": 0.0,
            "damage_ratio": k * f,
            "knockouts_per_match": k * 0.5,
            "mean_survival_s": 30 + k,
        }
        for k, s in enumerate(steps, 1)
        for o, f in (("based", 1.0), ("constant", 2.0), ("zoner", 0.5))
    ]
    pd.DataFrame(ev).to_csv(run_dir / "evaluation_results.csv", index=False)
    pd.DataFrame({"step": steps, "entropy_loss": [-6.9, -6.5, -6.0, -5.2, -4.8]}).to_csv(
        run_dir / "metrics.csv", index=False
    )
    ratings = [
        {"step": s, "name": n, "rating": 1000 + k * d}
        for k, s in enumerate(steps)
        for n, d in (("based", -5), ("rl_model_10000_steps", 20), ("constant", -15))
    ]
    pd.DataFrame(ratings).to_csv(run_dir / "ratings.csv", index=False)


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_plot_training_curves_full_run(tmp_path):
    _write_run(tmp_path)
    fig = training_curves_figure(tmp_path)
    assert len(fig.axes) == 5
    assert "no data yet" not in _texts(fig)
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)
    assert len(fig.axes[1].get_lines()) == 3 + 1  # one line per opponent plus the target
    out = plot_training_curves(tmp_path)
    assert out == tmp_path / "training_curves.png"
    assert mpimg.imread(out).shape[:2] == (1300, 1500)


def test_plot_training_curves_handles_missing_and_partial_csvs(tmp_path):
    fig = training_curves_figure(tmp_path)  # an empty run folder
    assert len(fig.axes) == 5 and _texts(fig).count("no data yet") == 5
    (tmp_path / "monitor.csv").write_text('#{"t_start": 0}\n')  # header comment only
    (tmp_path / "metrics.csv").write_text("step,value_loss\n1,0.5\n")  # no entropy column
    out = plot_training_curves(tmp_path, tmp_path / "sub" / "curves.png")
    assert out.is_file() and out.parent.name == "sub"


def test_reward_panel_counts_agent_steps_like_the_other_panels(tmp_path):
    # With action_repeat 4 a match of 400 frames is 100 agent steps: "l" (frames) must not be the x axis.
    lines = ['#{"t_start": 0, "env_id": null}', "r,l,t,step,result,opponent"]
    lines += [f"{i}.0,400,{i}.0,{100 * (i + 1)},win,based" for i in range(30)]
    (tmp_path / "monitor.csv").write_text("\n".join(lines) + "\n")
    fig = training_curves_figure(tmp_path)
    x = fig.axes[0].get_lines()[0].get_xdata()
    assert list(x) == [100 * (i + 1) for i in range(30)]
