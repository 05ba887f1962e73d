"""The tournament's move data, compiled to flat lookup tables.

``data/moves.json`` holds every number the original engine reads from its 33 move
files (3 weapons × 11 moves), in our own schema (a copy of
``shared/fidelity/moves.json``; a test checks the two agree). This module turns it
into arrays the batched engine indexes with one ``take`` per field.

How the original interprets a move (rules, not data; ``attacks.py`` runs them):
a move is a chain of *powers*; a power is a list of *casts* run one after the
other, then ``recovery_total`` frames of recovery, then the move ends or goes on
to the power named by ``next_hit`` / ``next_miss`` / ``next_ground``. A cast has
``startup`` frames, then ``active`` frames in which its hitboxes are live, and
per-frame *events* (velocity changes of the caster or its victims, pulls,
teleports). Frame counts are the files' 60-FPS numbers halved with floor
division, exactly as the original does, so some 1-frame windows become 0 frames
and never hit.

Tables (all NumPy arrays, indexed by a global row number):
- powers ``[n_powers]``: flags, frame counts, stun, branch targets (global rows, -1 none);
- casts ``[n_casts]``: startup/active, damage and force, hit direction, hitboxes
  ``[n_casts, MAX_HITBOXES]`` and the ground probe;
- events ``[n_events]`` and ``event_at[n_casts, max_frame]`` (-1 where a cast frame has none);
- ``first_power[weapon, move]`` and ``move_key[weapon, move]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from environment import params as P

DATA_PATH = Path(__file__).with_name("data") / "moves.json"
WEAPON_FILE_NAMES = ("Unarmed", "Spear", "Hammer")  # the files' names for Punch, Spear, Hammer
MOVE_FILE_NAMES = ("NLight", "DLight", "SLight", "NSig", "DSig", "SSig", "NAir", "DAir", "SAir", "Recovery",
                   "Groundpound")  # fmt: skip
BRAWL_TO_UNITS = 1.024 / 320  # the original's pixel-to-world factor; offsets are raw * 2 * this
GROUND_PROBE_Y = 1.54  # a ground probe below this height counts as touching the floor (a fixed height)


def to_world(raw: float) -> float:
    """A stored offset or size in world units, computed in the original's operation order."""
    return raw * 2 * BRAWL_TO_UNITS


@dataclass(frozen=True)
class MoveTables:
    # --- powers -------------------------------------------------------------------
    charge: np.ndarray  # bool: a charge power (ends on release after min_charge, or after max_charge)
    min_charge: np.ndarray
    max_charge: np.ndarray  # the last cast's startup: the auto-release point
    recovery: np.ndarray  # recovery_total frames after the last cast
    stun: np.ndarray
    next_hit: np.ndarray  # global power rows, -1 none
    next_miss: np.ndarray
    next_ground: np.ndarray
    last_power: np.ndarray  # bool: no next power at all (the move ends after this one)
    floor_drag: np.ndarray
    steerable: np.ndarray
    rehit: np.ndarray  # re-hits every victim of the move each frame, without a hitbox test
    instant: np.ndarray  # branches on the frame a hitbox first connects
    pull_all: np.ndarray  # pulls every victim of the move (else only the first one hit)
    vel_on_hit: np.ndarray  # bool: sets the caster's velocity on its first connecting frame
    vel_on_hit_xy: np.ndarray  # [n_powers, 2] that velocity (as the original computes it)
    first_cast: np.ndarray
    # --- casts --------------------------------------------------------------------
    startup: np.ndarray
    active: np.ndarray
    last_cast: np.ndarray  # bool: the power's last cast
    damage: np.ndarray
    force_fixed: np.ndarray
    force_var: np.ndarray
    hit_dir: np.ndarray  # [n_casts, 2] (forward-signed x, y down) of the knockback direction
    hitbox: np.ndarray  # [n_casts, MAX_HITBOXES, 4] dx (forward), dy, w, h in world units
    hitbox_valid: np.ndarray  # [n_casts, MAX_HITBOXES]
    has_probe: np.ndarray
    probe_dy: np.ndarray  # the last probe's dy (only the last probe's test counts in the original)
    event_at: np.ndarray  # [n_casts, max_event_frame + 1] event row or -1
    # --- events -------------------------------------------------------------------
    pull_on: np.ndarray
    pull: np.ndarray  # [n_events, 3] dx (forward), dy, gain
    polar_on: np.ndarray
    polar: np.ndarray  # [n_events, 2] caster velocity (forward-signed x, y)
    scale_on: np.ndarray  # [n_events, 2] per axis
    scale: np.ndarray  # [n_events, 2]
    set_on: np.ndarray  # [n_events, 2]
    set_v: np.ndarray  # [n_events, 2] (forward-signed x, y down)
    add_on: np.ndarray
    add_v: np.ndarray
    victim_set_on: np.ndarray
    victim_set_v: np.ndarray
    victim_pos_on: np.ndarray
    victim_pos: np.ndarray  # [n_events, 2] offset from the caster (forward-signed x, y)
    any_victim_event: np.ndarray  # [n_events] bool: the event touches the victims
    # --- moves --------------------------------------------------------------------
    first_power: np.ndarray  # [weapons, 13] by move id (rows 0/1 unused)
    move_key: np.ndarray  # [weapons, 13] key index held to keep the move going (j or k)


MAX_HITBOXES = 10


def load_move_data(path: Path = DATA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _polar(speed: float, angle_deg: float) -> tuple[float, float]:
    angle = math.radians(angle_deg)
    return math.cos(angle) * speed, -math.sin(angle) * speed


def compile_moves(data: dict | None = None) -> MoveTables:
    """Flatten the move data into global power / cast / event rows."""
    data = load_move_data() if data is None else data
    powers, casts, events = [], [], []
    first_power = np.full((len(WEAPON_FILE_NAMES), 13), -1, np.int16)
    move_key = np.full((len(WEAPON_FILE_NAMES), 13), P.K_LIGHT, np.int8)
    for w, weapon in enumerate(WEAPON_FILE_NAMES):
        for m, move_name in enumerate(MOVE_FILE_NAMES):
            move = data["weapons"][weapon][move_name]
            base = len(powers)
            move_id = P.FIRST_MOVE_ID + m
            first_power[w, move_id] = base + move["first_power"]
            move_key[w, move_id] = P.K_HEAVY if move["key"] == "HEAVY" else P.K_LIGHT
            for power in move["powers"]:
                powers.append((power, base, len(casts)))
                for c, cast in enumerate(power["casts"]):
                    casts.append((cast, power, c == len(power["casts"]) - 1))
    t: dict[str, np.ndarray] = {}
    _fill_powers(t, powers)
    events = _fill_casts(t, casts)
    _fill_events(t, events)
    t["first_power"] = first_power
    t["move_key"] = move_key
    return MoveTables(**t)


def _fill_powers(t: dict, powers: list) -> None:
    n = len(powers)
    t.update(charge=np.zeros(n, bool), min_charge=np.zeros(n, np.int16), max_charge=np.zeros(n, np.int16),
             recovery=np.zeros(n, np.int16), stun=np.zeros(n, np.int16), next_hit=np.full(n, -1, np.int16),
             next_miss=np.full(n, -1, np.int16), next_ground=np.full(n, -1, np.int16), last_power=np.zeros(n, bool),
             floor_drag=np.zeros(n, bool), steerable=np.zeros(n, bool), rehit=np.zeros(n, bool),
             instant=np.zeros(n, bool), pull_all=np.zeros(n, bool), vel_on_hit=np.zeros(n, bool),
             vel_on_hit_xy=np.zeros((n, 2)), first_cast=np.zeros(n, np.int16))  # fmt: skip
    for i, (power, base, first_cast) in enumerate(powers):
        raw = power["raw_frames"]
        # The original halves each stored frame count with floor division, then derives the recovery.
        fixed_recovery, recovery = raw["fixedRecovery"] // 2, raw["recovery"] // 2
        t["recovery"][i] = fixed_recovery + math.floor(recovery / 1.426)
        t["min_charge"][i] = raw["minCharge"] // 2
        t["stun"][i] = raw["stunTime"] // 2
        t["max_charge"][i] = power["casts"][-1]["startup_raw"] // 2
        t["charge"][i] = power["charge"]
        for field, key in (("next_hit", "next_on_hit"), ("next_miss", "next_on_miss"), ("next_ground", "next_on_ground")):
            t[field][i] = -1 if power[key] == -1 else base + power[key]
        t["last_power"][i] = power["next_on_hit"] == -1 and power["next_on_miss"] == -1
        t["floor_drag"][i] = power["floor_drag"]
        t["steerable"][i] = power["steerable"]
        t["rehit"][i] = power["rehit_all_victims"]
        t["instant"][i] = power["advance_on_first_contact"]
        t["pull_all"][i] = power["pull_all_victims"]
        on_hit = power["self_vel_on_hit"]
        t["vel_on_hit"][i] = on_hit["on"]
        # As written in the original: x = cos(a) * speed, y = sin(a), neither negated nor scaled.
        angle = math.radians(on_hit["angle_deg"])
        t["vel_on_hit_xy"][i] = (math.cos(angle) * on_hit["speed"], math.sin(angle))
        t["first_cast"][i] = first_cast


def _fill_casts(t: dict, casts: list) -> list:
    n = len(casts)
    t.update(startup=np.zeros(n, np.int16), active=np.zeros(n, np.int16), last_cast=np.zeros(n, bool),
             damage=np.zeros(n), force_fixed=np.zeros(n), force_var=np.zeros(n), hit_dir=np.zeros((n, 2)),
             hitbox=np.zeros((n, MAX_HITBOXES, 4)), hitbox_valid=np.zeros((n, MAX_HITBOXES), bool),
             has_probe=np.zeros(n, bool), probe_dy=np.zeros(n))  # fmt: skip
    events, event_frames = [], []
    for i, (cast, power, is_last) in enumerate(casts):
        t["startup"][i] = cast["startup_raw"] // 2
        t["active"][i] = cast["active_raw"] // 2
        t["last_cast"][i] = is_last
        t["damage"][i] = cast["damage"]
        t["force_fixed"][i] = cast["force_fixed"]
        t["force_var"][i] = cast["force_per_damage"]
        angle = cast["angle_deg_override"] if cast["angle_deg_override"] != 0.0 else power["angle_deg"]
        t["hit_dir"][i] = (math.cos(math.radians(angle)), -math.sin(math.radians(angle)))
        if len(cast["hitboxes"]) > MAX_HITBOXES:
            raise ValueError(f"a cast has {len(cast['hitboxes'])} hitboxes; MAX_HITBOXES is {MAX_HITBOXES}")
        for h, box in enumerate(cast["hitboxes"]):
            t["hitbox"][i, h] = [to_world(box[k]) for k in ("dx_raw", "dy_raw", "w_raw", "h_raw")]
            t["hitbox_valid"][i, h] = True
        if cast["ground_probes"]:
            t["has_probe"][i] = True
            t["probe_dy"][i] = to_world(cast["ground_probes"][-1]["dy_raw"])
        # The original applies the first event whose halved frame matches; later ones that halve
        # to the same frame never fire.
        frames = {}
        for event in cast["events"]:
            frames.setdefault(event["frame_raw"] // 2, event)
        event_frames.append({frame: len(events) + k for k, frame in enumerate(frames)})
        events.extend(frames.values())
    width = 1 + max((max(f) for f in event_frames if f), default=0)
    event_at = np.full((n, width), -1, np.int16)
    for i, frames in enumerate(event_frames):
        for frame, row in frames.items():
            event_at[i, frame] = row
    t["event_at"] = event_at
    return events


def _axis_pair(spec: dict | None) -> tuple[tuple[bool, bool], tuple[float, float]]:
    """Per-axis switches and values of a velocity event: x forward-signed, y negated (the files are y-up)."""
    if spec is None:
        return (False, False), (0.0, 0.0)
    return (spec["x_on"], spec["y_on"]), (spec["x_forward"], -spec["y_up_raw"])


def _fill_events(t: dict, events: list) -> None:
    n = max(len(events), 1)
    t.update(pull_on=np.zeros(n, bool), pull=np.zeros((n, 3)), polar_on=np.zeros(n, bool), polar=np.zeros((n, 2)),
             scale_on=np.zeros((n, 2), bool), scale=np.ones((n, 2)), set_on=np.zeros((n, 2), bool),
             set_v=np.zeros((n, 2)), add_on=np.zeros((n, 2), bool), add_v=np.zeros((n, 2)),
             victim_set_on=np.zeros((n, 2), bool), victim_set_v=np.zeros((n, 2)),
             victim_pos_on=np.zeros((n, 2), bool), victim_pos=np.zeros((n, 2)),
             any_victim_event=np.zeros(n, bool))  # fmt: skip
    for i, event in enumerate(events):
        pull = event.get("pull_victim_to")
        if pull is not None and pull["on"]:
            t["pull_on"][i] = True
            t["pull"][i] = (to_world(pull["dx_raw"]), to_world(pull["dy_raw"]), pull["gain"])
        polar = event.get("self_vel_polar_set")
        if polar is not None and polar["on"]:
            t["polar_on"][i] = True
            t["polar"][i] = _polar(polar["speed"], polar["angle_deg_up_ccw"])
        scale = event.get("self_vel_scale")
        if scale is not None:
            t["scale_on"][i] = (scale["x_on"], scale["y_on"])
            t["scale"][i] = (scale["x_factor"], scale["y_factor"])
        # The files store y up-positive; the original negates it on load (y grows downward).
        for on_field, value_field, key in (("set_on", "set_v", "self_vel_set"), ("add_on", "add_v", "self_vel_add"),
                                           ("victim_set_on", "victim_set_v", "victims_vel_set")):
            t[on_field][i], t[value_field][i] = _axis_pair(event.get(key))
        teleport = event.get("victims_pos_set")
        if teleport is not None:
            t["victim_pos_on"][i] = (teleport["x_on"], teleport["y_on"])
            t["victim_pos"][i] = (to_world(teleport["dx_raw"]), to_world(teleport["dy_raw"]))
        t["any_victim_event"][i] = t["pull_on"][i] or t["victim_set_on"][i].any() or t["victim_pos_on"][i].any()


MOVES = compile_moves()
