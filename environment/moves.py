"""The tournament's move data, compiled to flat tables for the engine.

``data/moves.json`` holds every number the original engine reads from its 33 move
files (3 weapons × 11 moves), in our own schema (a copy of
``shared/fidelity/moves.json``; a test checks the two agree). This module turns it
into arrays indexed by a global row number.

How the original interprets a move (``attacks.py`` runs it): a move is a chain of
*powers*; a power is a list of *casts* run one after the other, then
``recovery`` frames of recovery, then the move ends or goes on to the power named
by ``next_hit`` / ``next_miss`` / ``next_ground``. A cast has ``startup`` frames,
then ``active`` frames in which its hitboxes are live, and per-frame *events*
(velocity changes of the caster or its victims, pulls, teleports). Frame counts
are the files' 60-FPS numbers halved with floor division, exactly as the original
does, so some 1-frame windows become 0 frames and never hit.

| table        | shape                     | one row per                                      |
|--------------|---------------------------|--------------------------------------------------|
| `powers`     | (n_powers,) structured    | power: flags, frame counts, stun, branch targets |
| `casts`      | (n_casts,) structured     | cast: startup/active, damage, force, direction, ground probe |
| `hitboxes`   | (n_casts, 10, 12)         | hitbox slot: dx dy w h, then its capsule geometry (`HB_*`) |
| `events`     | (n_events,) structured    | frame event                                      |
| `event_at`   | (n_casts, frames)         | event row of a cast's frame, -1 none             |
| `first_power`| (3, 13)                   | weapon × move id: the move's first power         |
| `move_key`   | (3, 13)                   | weapon × move id: the key that keeps it going (j or k) |
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
MOVE_FILE_NAMES = (
    "NLight",
    "DLight",
    "SLight",
    "NSig",
    "DSig",
    "SSig",
    "NAir",
    "DAir",
    "SAir",
    "Recovery",
    "Groundpound",
)
BRAWL_TO_UNITS = 1.024 / 320  # the original's pixel-to-world factor; offsets are raw * 2 * this
GROUND_PROBE_Y = 1.54  # a ground probe below this height counts as touching the floor (a fixed height)
MAX_HITBOXES = 10

POWER_DTYPE = np.dtype(
    [
        ("charge", "?"),
        ("min_charge", "i2"),
        ("max_charge", "i2"),  # max: the last cast's startup
        ("recovery", "i2"),
        ("stun", "i2"),
        ("next_hit", "i2"),
        ("next_miss", "i2"),
        ("next_ground", "i2"),  # global power rows, -1 none
        ("last_power", "?"),  # no next power at all: the move ends after this one
        ("floor_drag", "?"),
        ("steerable", "?"),
        ("rehit", "?"),  # re-hits every earlier victim of the move each frame, without a hitbox test
        ("instant", "?"),  # branches on the frame a hitbox first connects
        ("vel_on_hit", "?"),
        ("vel_on_hit_x", "f8"),
        ("vel_on_hit_y", "f8"),  # caster velocity set on its first hit
        ("first_cast", "i2"),
    ]
)
CAST_DTYPE = np.dtype(
    [
        ("startup", "i2"),
        ("active", "i2"),
        ("last_cast", "?"),
        ("damage", "f8"),
        ("force_fixed", "f8"),
        ("force_var", "f8"),
        ("dir_x", "f8"),
        ("dir_y", "f8"),  # knockback direction (forward-signed x, y down)
        ("has_probe", "?"),
        ("probe_dy", "f8"),  # the last ground probe (only the last one's test counts)
        ("n_hitboxes", "i1"),
    ]
)
EVENT_DTYPE = np.dtype(
    [
        ("pull_on", "?"),
        ("pull_dx", "f8"),
        ("pull_dy", "f8"),
        ("pull_gain", "f8"),
        ("polar_on", "?"),
        ("polar_x", "f8"),
        ("polar_y", "f8"),
        ("scale_x_on", "?"),
        ("scale_y_on", "?"),
        ("scale_x", "f8"),
        ("scale_y", "f8"),
        ("set_x_on", "?"),
        ("set_y_on", "?"),
        ("set_x", "f8"),
        ("set_y", "f8"),
        ("add_x_on", "?"),
        ("add_y_on", "?"),
        ("add_x", "f8"),
        ("add_y", "f8"),
        ("victim_set_x_on", "?"),
        ("victim_set_y_on", "?"),
        ("victim_set_x", "f8"),
        ("victim_set_y", "f8"),
        ("victim_pos_x_on", "?"),
        ("victim_pos_y_on", "?"),
        ("victim_pos_x", "f8"),
        ("victim_pos_y", "f8"),
    ]
)
# Columns of the hitbox table.
HB_DX, HB_DY, HB_W, HB_H, HB_RADIUS, HB_CAP_DX, HB_CAP_DY, HB_HAS_RECT, HB_RECT_LEFT, HB_RECT_TOP = range(10)
HB_RECT_W, HB_RECT_H = 10, 11


def to_world(raw: float) -> float:
    """A stored offset or size in world units, computed in the original's operation order."""
    return raw * 2 * BRAWL_TO_UNITS


def capsule_geometry(w: float, h: float) -> tuple[float, ...]:
    """The original's CapsuleCollider for a (w, h) capsule: radius, cap offsets, and its straight part
    as pygame.Rect(cx - rect_left, cy - rect_top, rect_w, rect_h) with the sizes already truncated."""
    radius = min(w, h) / 2
    if w == h:  # a circle: no straight part
        return radius, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if w < h:  # upright
        return radius, 0.0, h / 2 - radius, 1.0, w / 2, h / 2 - radius, float(int(w)), float(int(h - 2 * radius))
    return radius, w / 2 - radius, 0.0, 1.0, w / 2 - radius, h / 2, float(int(w - 2 * radius)), float(int(h))


@dataclass(frozen=True)
class MoveTables:
    powers: np.ndarray
    casts: np.ndarray
    hitboxes: np.ndarray
    events: np.ndarray
    event_at: np.ndarray
    first_power: np.ndarray
    move_key: np.ndarray

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        return (self.powers, self.casts, self.hitboxes, self.events, self.event_at, self.first_power, self.move_key)


def load_move_data(path: Path = DATA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def compile_moves(data: dict | None = None) -> MoveTables:
    """Flatten the move data into global power / cast / event rows."""
    data = load_move_data() if data is None else data
    power_rows, cast_rows = [], []
    first_power = np.full((len(WEAPON_FILE_NAMES), 13), -1, np.int16)
    move_key = np.full((len(WEAPON_FILE_NAMES), 13), P.K_LIGHT, np.int8)
    for w, weapon in enumerate(WEAPON_FILE_NAMES):
        for m, move_name in enumerate(MOVE_FILE_NAMES):
            move = data["weapons"][weapon][move_name]
            base = len(power_rows)
            move_id = P.FIRST_MOVE_ID + m
            first_power[w, move_id] = base + move["first_power"]
            move_key[w, move_id] = P.K_HEAVY if move["key"] == "HEAVY" else P.K_LIGHT
            for power in move["powers"]:
                power_rows.append((power, base, len(cast_rows)))
                for c, cast in enumerate(power["casts"]):
                    cast_rows.append((cast, power, c == len(power["casts"]) - 1))
    powers = _powers(power_rows)
    casts, hitboxes, events, event_at = _casts(cast_rows)
    return MoveTables(powers, casts, hitboxes, events, event_at, first_power, move_key)


def _powers(rows: list) -> np.ndarray:
    out = np.zeros(len(rows), POWER_DTYPE)
    for i, (power, base, first_cast) in enumerate(rows):
        raw, row = power["raw_frames"], out[i]
        # The original halves each stored frame count with floor division, then derives the recovery.
        fixed_recovery, recovery = raw["fixedRecovery"] // 2, raw["recovery"] // 2
        row["recovery"] = fixed_recovery + math.floor(recovery / 1.426)
        row["min_charge"] = raw["minCharge"] // 2
        row["stun"] = raw["stunTime"] // 2
        row["max_charge"] = power["casts"][-1]["startup_raw"] // 2
        row["charge"] = power["charge"]
        for field, key in (
            ("next_hit", "next_on_hit"),
            ("next_miss", "next_on_miss"),
            ("next_ground", "next_on_ground"),
        ):
            row[field] = -1 if power[key] == -1 else base + power[key]
        row["last_power"] = power["next_on_hit"] == -1 and power["next_on_miss"] == -1
        row["floor_drag"] = power["floor_drag"]
        row["steerable"] = power["steerable"]
        row["rehit"] = power["rehit_all_victims"]
        row["instant"] = power["advance_on_first_contact"]
        on_hit = power["self_vel_on_hit"]
        row["vel_on_hit"] = on_hit["on"]
        # As written in the original: x = cos(a) * speed, y = sin(a), neither negated nor scaled.
        angle = math.radians(on_hit["angle_deg"])
        row["vel_on_hit_x"], row["vel_on_hit_y"] = math.cos(angle) * on_hit["speed"], math.sin(angle)
        row["first_cast"] = first_cast
    return out


def _casts(rows: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    casts = np.zeros(len(rows), CAST_DTYPE)
    hitboxes = np.zeros((len(rows), MAX_HITBOXES, 12))
    events, event_frames = [], []
    for i, (cast, power, is_last) in enumerate(rows):
        row = casts[i]
        row["startup"], row["active"] = cast["startup_raw"] // 2, cast["active_raw"] // 2
        row["last_cast"] = is_last
        row["damage"], row["force_fixed"], row["force_var"] = (
            cast["damage"],
            cast["force_fixed"],
            cast["force_per_damage"],
        )
        angle = cast["angle_deg_override"] if cast["angle_deg_override"] != 0.0 else power["angle_deg"]
        row["dir_x"], row["dir_y"] = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
        if len(cast["hitboxes"]) > MAX_HITBOXES:
            raise ValueError(f"a cast has {len(cast['hitboxes'])} hitboxes; MAX_HITBOXES is {MAX_HITBOXES}")
        row["n_hitboxes"] = len(cast["hitboxes"])
        for h, box in enumerate(cast["hitboxes"]):
            dx, dy, w, hh = (to_world(box[k]) for k in ("dx_raw", "dy_raw", "w_raw", "h_raw"))
            hitboxes[i, h] = (dx, dy, w, hh, *capsule_geometry(w, hh))
        if cast["ground_probes"]:
            row["has_probe"] = True
            row["probe_dy"] = to_world(cast["ground_probes"][-1]["dy_raw"])
        # The original applies the first event whose halved frame matches; later ones that halve
        # to the same frame never fire.
        frames = {}
        for event in cast["events"]:
            frames.setdefault(event["frame_raw"] // 2, event)
        event_frames.append({frame: len(events) + k for k, frame in enumerate(frames)})
        events.extend(frames.values())
    width = 1 + max((max(f) for f in event_frames if f), default=0)
    event_at = np.full((len(rows), width), -1, np.int16)
    for i, frames in enumerate(event_frames):
        for frame, event_row in frames.items():
            event_at[i, frame] = event_row
    return casts, hitboxes, _events(events), event_at


def _events(events: list) -> np.ndarray:
    out = np.zeros(max(len(events), 1), EVENT_DTYPE)
    out["scale_x"] = out["scale_y"] = 1.0
    for i, event in enumerate(events):
        row = out[i]
        pull = event.get("pull_victim_to")
        if pull is not None and pull["on"]:
            row["pull_on"] = True
            row["pull_dx"], row["pull_dy"], row["pull_gain"] = (
                to_world(pull["dx_raw"]),
                to_world(pull["dy_raw"]),
                pull["gain"],
            )
        polar = event.get("self_vel_polar_set")
        if polar is not None and polar["on"]:
            angle = math.radians(polar["angle_deg_up_ccw"])
            row["polar_on"] = True
            row["polar_x"], row["polar_y"] = math.cos(angle) * polar["speed"], -math.sin(angle) * polar["speed"]
        scale = event.get("self_vel_scale")
        if scale is not None:
            row["scale_x_on"], row["scale_y_on"] = scale["x_on"], scale["y_on"]
            row["scale_x"], row["scale_y"] = scale["x_factor"], scale["y_factor"]
        # The files store y up-positive; the original negates it on load (y grows downward).
        for prefix, key in (("set", "self_vel_set"), ("add", "self_vel_add"), ("victim_set", "victims_vel_set")):
            spec = event.get(key)
            if spec is not None:
                row[f"{prefix}_x_on"], row[f"{prefix}_y_on"] = spec["x_on"], spec["y_on"]
                row[f"{prefix}_x"], row[f"{prefix}_y"] = spec["x_forward"], -spec["y_up_raw"]
        teleport = event.get("victims_pos_set")
        if teleport is not None:
            row["victim_pos_x_on"], row["victim_pos_y_on"] = teleport["x_on"], teleport["y_on"]
            row["victim_pos_x"], row["victim_pos_y"] = to_world(teleport["dx_raw"]), to_world(teleport["dy_raw"])
    return out


MOVES = compile_moves()
