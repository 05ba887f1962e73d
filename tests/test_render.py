"""Frames, video files and the play CLI (fast: about 10 s in all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from environment import params as P
from environment import render
from environment.agents import make_agent
from environment.attacks import live_hitboxes
from environment.engine import BrawlEngine
from environment.match import run_match
from environment.moves import MOVES
from environment.render import MatchRenderer, VideoFallbackWarning, open_video_writer

ROOT = Path(__file__).resolve().parents[1]


def _fresh_state(p0_side: int = 1):
    engine = BrawlEngine(1, seed=0)
    engine.reset(seeds=0, p0_side=p0_side)
    return engine.state


def _mp4_frames(path: Path) -> tuple[int, tuple[int, int]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return sum(1 for _ in reader), tuple(meta["size"])


def _gif_frames(path: Path) -> np.ndarray:
    return iio.imread(path, index=None)


def _frames(n: int) -> list[np.ndarray]:
    """n distinct frames: a few steps of a real match."""
    engine = BrawlEngine(1, seed=1)
    engine.reset(seeds=1)
    renderer = MatchRenderer()
    keys = np.zeros((1, 2, P.N_KEYS), bool)
    keys[0, :, P.K_D] = True
    frames = []
    for _ in range(n):
        engine.step(keys)
        frames.append(renderer.render(engine.state, 0, engine.max_timesteps))
    return frames


# --- frames ---------------------------------------------------------------------------
def test_frame_is_uint8_rgb_with_players_at_their_positions():
    state = _fresh_state()
    renderer = MatchRenderer()
    frame = renderer.render(state, 0, 2700)
    assert frame.shape == (480, 720, 3) and frame.dtype == np.uint8
    colours = []
    for k in range(2):
        col, row = renderer.world_to_pixel(float(state.x[0, k]), float(state.y[0, k]) + 0.3)
        assert 0 <= col < 720 and 0 <= row < renderer.world_h
        assert not np.array_equal(frame[row, col], renderer.background[row, col])
        colours.append(tuple(frame[row, col]))
    assert colours[0] != colours[1]  # the players look different
    assert state.x[0, 0] > 0 and renderer.world_to_pixel(5, 0)[0] > renderer.world_to_pixel(-5, 0)[0]


def test_render_reads_state_only_and_returns_fresh_frames():
    state = _fresh_state()
    before = state.copy()
    renderer = MatchRenderer(show_hitboxes=True)
    a = renderer.render(state, 0, 2700)
    b = renderer.render(state, 0, 2700)
    a[:] = 0
    assert b.any()
    for name, array in before.arrays().items():
        np.testing.assert_array_equal(getattr(state, name), array, err_msg=name)


def test_ko_player_is_hidden_and_offscreen_player_gets_a_marker():
    state = _fresh_state()
    renderer = MatchRenderer()
    base = renderer.render(state, 0, 2700)
    col, row = renderer.world_to_pixel(float(state.x[0, 0]), float(state.y[0, 0]) + 0.3)
    state.state[0, 0] = P.KO
    hidden = renderer.render(state, 0, 2700)
    assert not np.array_equal(hidden[row, col], base[row, col])
    np.testing.assert_array_equal(hidden[row, col], renderer.background[row, col])
    state.state[0, 0] = P.IN_AIR
    state.x[0, 0] = 12.5  # beyond the camera, inside the blast zone
    marked = renderer.render(state, 0, 2700)
    edge = marked[: renderer.world_h, -30:]
    assert (edge == render.PLAYER_MAIN[0]).all(axis=2).any()


def test_hitbox_overlay_shows_the_active_hitbox():
    state = _fresh_state()
    # The unarmed side light's third cast: its first frame (startup 0) is live.
    power = MOVES.powers[MOVES.first_power[P.PUNCH, P.SLIGHT]]
    cast = int(power["first_cast"]) + 2
    assert MOVES.casts[cast]["startup"] == 0 and MOVES.casts[cast]["active"] > 0
    state.state[0, 0], state.move[0, 0], state.cast[0, 0], state.cast_frame[0, 0] = P.ATTACK, P.SLIGHT, cast, 1
    (x, y, _, _), *_ = live_hitboxes(state, 0, 0)
    col, row = MatchRenderer().world_to_pixel(x, y)
    plain = MatchRenderer(show_hitboxes=False).render(state, 0, 2700)
    overlay = MatchRenderer(show_hitboxes=True).render(state, 0, 2700)
    assert not np.array_equal(plain[row, col], overlay[row, col])
    state.state[0, 0] = P.STANDING  # not attacking: no hitbox there
    idle = MatchRenderer(show_hitboxes=True).render(state, 0, 2700)
    assert not np.array_equal(idle[row, col], overlay[row, col])


def test_hud_changes_with_damage_stocks_weapon_and_time():
    state = _fresh_state()
    renderer = MatchRenderer()
    hud = slice(renderer.world_h, None)
    base = renderer.render(state, 0, 2700)[hud]
    for field, value in (("damage", 140.0), ("stocks", 1), ("weapon", P.SPEAR)):
        changed = state.copy()
        getattr(changed, field)[0, 1] = value
        assert not np.array_equal(renderer.render(changed, 0, 2700)[hud], base), field
    later = state.copy()
    later.frame[0] = 900
    assert not np.array_equal(renderer.render(later, 0, 2700)[hud], base)


def test_lying_weapons_are_drawn():
    state = _fresh_state()
    renderer = MatchRenderer()
    empty = renderer.render(state, 0, 2700)
    state.weapon_kind[0, 0] = P.HAMMER
    state.weapon_x[0, 0], state.weapon_y[0, 0], state.weapon_born[0, 0] = 3.0, 0.45, 0
    drawn = renderer.render(state, 0, 2700)
    col, row = renderer.world_to_pixel(3.0, 0.75)
    around = (slice(row - 8, row + 8), slice(col - 20, col + 20))
    assert not np.array_equal(drawn[around], empty[around])


# --- video files ----------------------------------------------------------------------
def test_run_match_writes_a_decodable_mp4(tmp_path):
    path = tmp_path / "match.mp4"
    stats = run_match(make_agent("based"), make_agent("constant"), max_timesteps=60, video_path=str(path), seed=0)
    assert stats.frames == 60
    assert _mp4_frames(path) == (61, (720, 480))  # the initial frame plus one per step


def test_gif_path_writes_a_gif(tmp_path):
    frames = _frames(5)
    with open_video_writer(tmp_path / "clip.gif") as writer:
        for frame in frames:
            writer.append(frame)
    assert writer.path.endswith("clip.gif")
    decoded = _gif_frames(tmp_path / "clip.gif")
    assert decoded.shape == (5, 480, 720, 3)
    # Quantised to 256 colours, but close to the source, subrectangles included.
    assert np.abs(decoded[-1].astype(int) - frames[-1]).mean() < 3


def _fail(*args, **kwargs):
    raise OSError("no ffmpeg here")


@pytest.mark.parametrize("where", ["_start_ffmpeg", "_ffmpeg_exe"])
def test_mp4_falls_back_to_gif_when_ffmpeg_cannot_start(tmp_path, monkeypatch, where):
    monkeypatch.setattr(render, where, _fail)
    frames = _frames(3)
    with pytest.warns(VideoFallbackWarning, match="GIF"):
        writer = open_video_writer(tmp_path / "clip.mp4")
        for frame in frames:
            writer.append(frame)
        writer.close()
    assert writer.path == str(tmp_path / "clip.gif")
    assert not (tmp_path / "clip.mp4").exists()
    assert _gif_frames(tmp_path / "clip.gif").shape == (3, 480, 720, 3)


class _DyingStream:
    """An encoder that exits on its second frame, like ffmpeg without libx264."""

    def __init__(self):
        self.count = 0

    def append(self, frame):
        self.count += 1
        if self.count > 1:
            raise RuntimeError("ffmpeg stopped while writing")

    def close(self):
        raise RuntimeError("ffmpeg failed")

    def abort(self):
        pass


def test_mp4_falls_back_to_gif_when_ffmpeg_dies_on_the_first_frames(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "_start_ffmpeg", lambda *a: _DyingStream())
    with pytest.warns(VideoFallbackWarning, match="writing GIF"), open_video_writer(tmp_path / "clip.mp4") as writer:
        for frame in _frames(4):
            writer.append(frame)
    assert _gif_frames(Path(writer.path)).shape[0] == 4


def test_writer_rejects_bad_frames(tmp_path):
    with open_video_writer(tmp_path / "x.gif") as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.append(np.zeros((48, 64, 3), np.float32))
        writer.append(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(ValueError, match="size changed"):
            writer.append(np.zeros((50, 64, 3), np.uint8))


def test_import_environment_does_not_import_the_video_stack():
    code = (
        "import sys, environment, environment.render, environment.play\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PIL', 'imageio', 'imageio_ffmpeg')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True)


# --- play CLI -------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_play_cli_writes_a_video(tmp_path):
    out = tmp_path / "tmp.mp4"
    cmd = [sys.executable, "-m", "environment.play", "based", "constant", "--out", str(out), "--max-timesteps", "30"]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.stat().st_size > 0
    assert "Result after 30 frames" in done.stdout and str(out) in done.stdout
    for label in ("damage dealt", "knockouts", "falls", "weapon pickups"):
        assert label in done.stdout


def test_play_cli_unknown_agent_lists_the_known_ones(tmp_path):
    cmd = [sys.executable, "-m", "environment.play", "based", "no_such_bot", "--out", str(tmp_path / "x.mp4")]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no_such_bot" in done.stderr and "based" in done.stderr and "constant" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.mp4").exists()
