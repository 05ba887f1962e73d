"""Match frames drawn from the state arrays, and streamed video files.

:class:`MatchRenderer` turns one row of a :class:`~environment.state.MatchState`
into an RGB ``uint8`` frame. It only reads the state. Speed comes from doing
the expensive work once: the static scene (sky, grounds, blast-zone hints, HUD
strip) is pre-rendered and copied per frame, everything that moves is an
axis-aligned rectangle filled by numpy slicing, and text is rasterised by
Pillow once per distinct string and then blitted as a cached alpha mask.

:func:`open_video_writer` streams frames to ffmpeg (H.264 MP4) as they come, so
a video never sits in memory; it writes a GIF instead for ``.gif`` paths or
when ffmpeg cannot be used.

Pillow, imageio and imageio-ffmpeg are imported lazily, inside the functions
that need them, so ``import environment`` works without them.
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from environment import params as P
from environment.attacks import live_hitboxes
from environment.moves import to_world
from environment.params import DEFAULT_PARAMS, GameParams
from environment.state import N_SPAWNERS, MatchState

Colour = tuple[int, int, int]

# --- Palette -----------------------------------------------------------------------
SKY_TOP: Colour = (20, 24, 36)
SKY_BOTTOM: Colour = (44, 50, 68)
GRID: Colour = (255, 255, 255)
GROUND_FILL: Colour = (78, 82, 96)
GROUND_EDGE: Colour = (196, 202, 216)
PLATFORM_FILL: Colour = (168, 124, 66)
PLATFORM_EDGE: Colour = (232, 190, 120)
BLAST: Colour = (215, 45, 45)
HUD_BG: Colour = (14, 15, 20)
TEXT: Colour = (235, 235, 240)
TEXT_DIM: Colour = (150, 152, 165)
STUN_FILL: Colour = (228, 40, 40)
TAUNT_FILL: Colour = (250, 215, 70)
HITBOX: Colour = (255, 40, 60)
HITBOX_SPENT: Colour = (255, 170, 40)  # this phase already landed its hit
HURTBOX: Colour = (120, 255, 140)
SPEAR_SHAFT: Colour = (200, 170, 120)
SPEAR_TIP: Colour = (225, 230, 240)
HAMMER_HANDLE: Colour = (150, 100, 55)
HAMMER_HEAD: Colour = (120, 124, 138)
# Per player: body fill, outline / bright attack fill. Blue vs orange stays apart
# for the common colour-vision deficiencies.
PLAYER_MAIN: tuple[Colour, Colour] = ((45, 125, 245), (240, 125, 25))
PLAYER_LIGHT: tuple[Colour, Colour] = ((160, 205, 255), (255, 210, 150))
PLAYER_LABELS = ("P1", "P2")

# The camera shows x in [-10.6, 10.6] and y in [-4.2, 8.2] above a HUD strip.
VIEW_W, VIEW_H, VIEW_CENTRE_Y = 21.2, 12.4, 2.0
BLINK_FRAMES = 60  # a lying weapon blinks during its last two seconds


@dataclass(frozen=True)
class Camera:
    """Fixed world → pixel mapping (y points down in both)."""

    scale: float  # pixels per world unit
    origin_x: float  # pixel column of world x = 0
    origin_y: float  # pixel row of world y = 0

    def px(self, x: float) -> int:
        return round(self.origin_x + x * self.scale)

    def py(self, y: float) -> int:
        return round(self.origin_y + y * self.scale)

    def box(self, cx: float, cy: float, w: float, h: float) -> tuple[int, int, int, int]:
        """Pixel rectangle (x0, y0, x1, y1), end-exclusive, of a world box centred at (cx, cy)."""
        return self.px(cx - w / 2), self.py(cy - h / 2), self.px(cx + w / 2), self.py(cy + h / 2)


# ==================================================================================
# Pixel primitives (all clip to the image, so callers may pass any rectangle)
# ==================================================================================
def _clip(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[slice, slice] | None:
    h, w = img.shape[:2]
    x0, x1 = max(x0, 0), min(x1, w)
    y0, y1 = max(y0, 0), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def fill_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: Colour) -> None:
    sl = _clip(img, x0, y0, x1, y1)
    if sl is not None:
        img[sl] = colour


def blend_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: Colour, alpha: float) -> None:
    """Translucent fill: img ← img·(1-alpha) + colour·alpha."""
    sl = _clip(img, x0, y0, x1, y1)
    if sl is not None:
        region = img[sl].astype(np.float32)
        region += (np.asarray(colour, np.float32) - region) * alpha
        img[sl] = region.astype(np.uint8)


def outline_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: Colour, t: int = 1) -> None:
    fill_rect(img, x0, y0, x1, y0 + t, colour)
    fill_rect(img, x0, y1 - t, x1, y1, colour)
    fill_rect(img, x0, y0, x0 + t, y1, colour)
    fill_rect(img, x1 - t, y0, x1, y1, colour)


def blit_mask(img: np.ndarray, x: int, y: int, mask: np.ndarray, colour: Colour) -> None:
    """Paint colour through an alpha mask (h, w, 1) float32 in [0, 1], top-left at (x, y)."""
    h, w = mask.shape[:2]
    sl = _clip(img, x, y, x + w, y + h)
    if sl is None:
        return
    ys, xs = sl
    m = mask[ys.start - y : ys.stop - y, xs.start - x : xs.stop - x]
    region = img[sl].astype(np.float32)
    region += (np.asarray(colour, np.float32) - region) * m
    img[sl] = region.astype(np.uint8)


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(round(ai + (bi - ai) * t) for ai, bi in zip(a, b, strict=True))  # type: ignore[return-value]


def damage_colour(percent: int) -> Colour:
    """HUD damage colour: white at 0 %, yellow near 100 %, red from 250 %."""
    if percent <= 100:
        return _mix(TEXT, (255, 225, 60), percent / 100)
    return _mix((255, 225, 60), (235, 40, 40), min((percent - 100) / 150, 1.0))


# ==================================================================================
# Text
# ==================================================================================
class TextCache:
    """Strings rasterised once by Pillow into alpha masks, then reused every frame.

    Measured on the 2-core dev machine: drawing the HUD's 8 strings through PIL costs
    ~1.1 ms a frame (array → image → array round trip included); blitting the same 8
    cached masks with numpy costs ~0.13 ms.
    """

    MAX_ENTRIES = 4096  # bounded: damage values and timers are finite, but be safe

    def __init__(self) -> None:
        self._fonts: dict[int, object] = {}
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    def _font(self, size: int):
        if size not in self._fonts:
            from PIL import ImageFont

            try:  # a bold face reads better on video; Pillow finds it in the system font dirs
                self._fonts[size] = ImageFont.truetype("DejaVuSans-Bold.ttf", size)
            except OSError:  # Pillow ≥ 10.1 embeds a scalable default font
                self._fonts[size] = ImageFont.load_default(size=size)
        return self._fonts[size]

    def mask(self, text: str, size: int) -> np.ndarray:
        key = (text, size)
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        from PIL import Image, ImageDraw

        font = self._font(size)
        ascent, descent = font.getmetrics()
        width = max(math.ceil(font.getlength(text)) + 2, 1)
        canvas = Image.new("L", (width, ascent + descent + 1), 0)
        ImageDraw.Draw(canvas).text((1, 0), text, fill=255, font=font)
        mask = (np.asarray(canvas, np.float32) / 255.0)[..., None]
        if len(self._masks) >= self.MAX_ENTRIES:
            self._masks.clear()
        self._masks[key] = mask
        return mask

    def draw(self, img: np.ndarray, x: int, y: int, text: str, size: int, colour: Colour, anchor: str = "l") -> int:
        """Blit text with its top at row y; anchor l/c/r places x at its left/centre/right. Returns its width."""
        mask = self.mask(text, size)
        w = mask.shape[1]
        x0 = x if anchor == "l" else x - w // 2 if anchor == "c" else x - w
        blit_mask(img, x0, y, mask, colour)
        return w


# ==================================================================================
# Renderer
# ==================================================================================
class MatchRenderer:
    """Draws match ``row`` of a state to an RGB frame; reads the state only.

    :param width, height: frame size in pixels (even, for H.264's yuv420p)
    :param show_hitboxes: overlay the active attack hitboxes and the hurtboxes
    :param params: the game constants the state was produced with
    """

    def __init__(
        self, width: int = 720, height: int = 480, show_hitboxes: bool = False, params: GameParams = DEFAULT_PARAMS
    ):
        if width < 160 or height < 120:
            raise ValueError(f"frame must be at least 160×120 pixels, got {width}×{height}")
        self.width, self.height = int(width), int(height)
        self.show_hitboxes = bool(show_hitboxes)
        self.params = params
        self.u = self.height / 480  # HUD layout unit: sizes below are for a 480-row frame
        self.hud_h = round(60 * self.u)
        self.world_h = self.height - self.hud_h
        scale = min(self.width / VIEW_W, self.world_h / VIEW_H)
        self.camera = Camera(scale, self.width / 2, self.world_h / 2 - VIEW_CENTRE_Y * scale)
        self.text = TextCache()
        self._panels: dict[tuple, np.ndarray] = {}
        self._background = self._draw_background()

    # --- public helpers ------------------------------------------------------------
    def world_to_pixel(self, x: float, y: float) -> tuple[int, int]:
        """(column, row) of a world point in the frame."""
        return self.camera.px(x), self.camera.py(y)

    @property
    def background(self) -> np.ndarray:
        """The static scene every frame starts from (read-only view)."""
        view = self._background.view()
        view.flags.writeable = False
        return view

    def render(self, state: MatchState, row: int, max_timesteps: int) -> np.ndarray:
        """A new (height, width, 3) uint8 frame of match ``row``."""
        frame = self._background.copy()
        world = frame[: self.world_h]  # a view: world drawing is clipped above the HUD strip
        s = state
        self._draw_platform(world, float(s.platform_x[row]), float(s.platform_y[row]))
        frame_no = int(s.frame[row])
        for column in range(s.weapon_kind.shape[1]):
            self._draw_lying_weapon(world, s, row, column, frame_no)
        for k in range(2):
            self._draw_player(world, s, row, k)
        for k in range(2):  # after both bodies, so a weapon is never hidden by the other player
            if int(s.weapon[row, k]) != P.PUNCH and self._visible(s, row, k):
                self._draw_held_weapon(world, s, row, k)
        if self.show_hitboxes:
            self._draw_hitboxes(world, s, row)
        self._draw_hud(frame, s, row, max_timesteps)
        if bool(s.done[row]):
            self._draw_result(world, int(s.result[row]))
        return frame

    # --- static scene --------------------------------------------------------------
    def _draw_background(self) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        ramp = np.linspace(0.0, 1.0, self.world_h, dtype=np.float32)[:, None]
        top, bottom = np.asarray(SKY_TOP, np.float32), np.asarray(SKY_BOTTOM, np.float32)
        img[: self.world_h] = (top + (bottom - top) * ramp)[:, None, :].astype(np.uint8)
        world = img[: self.world_h]
        self._draw_grid(world)
        self._draw_blast_hints(world)
        p, cam = self.params, self.camera
        bottom_y = VIEW_CENTRE_Y + VIEW_H  # grounds reach below the view
        for x_min, x_max, top_y, _ in (p.right_ground, p.left_ground):
            x0, x1, y0, y1 = cam.px(x_min), cam.px(x_max), cam.py(top_y), cam.py(bottom_y)
            fill_rect(world, x0, y0, x1, y1, GROUND_FILL)
            fill_rect(world, x0, y0, x1, y0 + max(3, int(0.1 * cam.scale)), GROUND_EDGE)
            outline_rect(world, x0, y0, x1, y1 + 5, (50, 52, 62), 1)
        img[self.world_h :] = HUD_BG
        fill_rect(img, 0, self.world_h, self.width, self.world_h + 2, (60, 62, 75))
        return img

    def _draw_grid(self, world: np.ndarray) -> None:
        """Faint 1-unit grid so positions and speeds can be judged by eye."""
        cam = self.camera
        for x in range(-11, 12):
            col = cam.px(x)
            blend_rect(world, col, 0, col + 1, world.shape[0], GRID, 0.05 if x % 5 else 0.1)
        for y in range(-5, 10):
            r = cam.py(y)
            blend_rect(world, 0, r, world.shape[1], r + 1, GRID, 0.05 if y % 5 else 0.1)

    def _draw_blast_hints(self, world: np.ndarray) -> None:
        """The blast zone lies off-screen sideways (|x| > 14): red edges and labels say so."""
        cam, p = self.camera, self.params
        r = cam.py(p.blast_y)
        blend_rect(world, 0, r, world.shape[1], world.shape[0], BLAST, 0.35)
        fill_rect(world, 0, r, world.shape[1], r + 2, BLAST)
        edge = max(3, int(4 * self.u))
        blend_rect(world, 0, 0, edge, world.shape[0], BLAST, 0.6)
        blend_rect(world, world.shape[1] - edge, 0, world.shape[1], world.shape[0], BLAST, 0.6)
        size = max(8, int(11 * self.u))
        y_label = int(6 * self.u)
        self.text.draw(world, edge + 3, y_label, f"< blast x=-{p.blast_x:g}", size, (230, 120, 120))
        self.text.draw(
            world, world.shape[1] - edge - 3, y_label, f"blast x={p.blast_x:g} >", size, (230, 120, 120), "r"
        )
        self.text.draw(world, edge + 3, r - size - 6, f"blast y={p.blast_y:g}", size, (230, 120, 120))

    # --- moving things -------------------------------------------------------------
    def _draw_platform(self, world: np.ndarray, x: float, y: float) -> None:
        w, h = self.params.platform_size
        x0, y0, x1, y1 = self.camera.box(x, y, w, h)
        y1 = max(y1, y0 + 4)
        fill_rect(world, x0, y0, x1, y1, PLATFORM_FILL)
        fill_rect(world, x0, y0, x1, y0 + 2, PLATFORM_EDGE)
        outline_rect(world, x0, y0, x1, y1, (90, 64, 30), 1)

    def _draw_lying_weapon(self, world: np.ndarray, s: MatchState, row: int, column: int, frame_no: int) -> None:
        kind = int(s.weapon_kind[row, column])
        if kind == 0:
            return
        p = self.params
        spawned = column < N_SPAWNERS
        lifetime = p.spawned_lifetime if spawned else p.dropped_lifetime
        if lifetime - (frame_no - int(s.weapon_born[row, column])) < BLINK_FRAMES and (frame_no // 4) % 2:
            return  # about to vanish
        x = float(s.weapon_x[row, column])
        base = float(s.weapon_y[row, column]) + p.weapon_body[1] / 2  # the bottom of its (invisible) box
        cam = self.camera
        if spawned:  # a soft glow tells fresh spawns from dropped weapons
            glow = cam.box(x, base - 0.3, 1.7, 0.6)
            blend_rect(world, *glow, (255, 220, 90), 0.12)
            outline_rect(world, *glow, (200, 175, 80), 1)
        # A spawner's weapon can be picked up once its spawn animation has played.
        dim = spawned and not bool(s.spawner_ready[row, column])
        self._draw_weapon_icon(world, kind, x, base, 1.0, dim=dim)

    def _draw_weapon_icon(self, world: np.ndarray, kind: int, x: float, base: float, facing: float, dim: bool) -> None:
        """A weapon lying on the line y=base, pointing along facing (dim while it cannot be picked up)."""
        cam = self.camera
        shade = 0.45 if dim else 0.0
        if kind == P.SPEAR:
            fill_rect(world, *cam.box(x - facing * 0.1, base - 0.1, 1.3, 0.12), _mix(SPEAR_SHAFT, SKY_TOP, shade))
            tip = cam.box(x + facing * 0.6, base - 0.1, 0.3, 0.22)
            fill_rect(world, *tip, _mix(SPEAR_TIP, SKY_TOP, shade))
        elif kind == P.HAMMER:
            fill_rect(world, *cam.box(x - facing * 0.1, base - 0.09, 0.9, 0.12), _mix(HAMMER_HANDLE, SKY_TOP, shade))
            head = cam.box(x + facing * 0.35, base - 0.22, 0.3, 0.44)
            fill_rect(world, *head, _mix(HAMMER_HEAD, SKY_TOP, shade))
            outline_rect(world, *head, (30, 30, 36), 1)

    def _visible(self, s: MatchState, row: int, k: int) -> bool:
        """Drawn in the scene: not knocked out (frozen, invisible until respawn) and on screen."""
        return int(s.state[row, k]) != P.KO and self._on_screen(float(s.x[row, k]), float(s.y[row, k]))

    def _draw_player(self, world: np.ndarray, s: MatchState, row: int, k: int) -> None:
        state = int(s.state[row, k])
        if state == P.KO:
            return
        p, cam = self.params, self.camera
        x, y, facing = float(s.x[row, k]), float(s.y[row, k]), float(s.facing[row, k]) or 1.0
        if not self._on_screen(x, y):
            self._draw_offscreen_marker(world, x, y, k)
            return
        x0, y0, x1, y1 = cam.box(x, y, p.body_w, p.body_h)
        main, light = PLAYER_MAIN[k], PLAYER_LIGHT[k]
        if state == P.DODGE:  # invulnerable: pale and see-through
            blend_rect(world, x0, y0, x1, y1, light, 0.35)
        else:
            fill_rect(world, x0, y0, x1, y1, self._body_colour(state, k))
        edge = (255, 255, 255) if state == P.ATTACK else light
        outline_rect(world, x0, y0, x1, y1, edge, max(2, int(cam.scale / 14)))
        if state == P.STUN:  # keep the owner readable on a red body
            fill_rect(world, x0 + 3, (y0 + y1) // 2 - 2, x1 - 3, (y0 + y1) // 2 + 2, main)
        self._draw_visor(world, x, y, facing)
        self.text.draw(world, cam.px(x), y0 - int(17 * self.u), PLAYER_LABELS[k], int(13 * self.u), light, "c")

    def _body_colour(self, state: int, k: int) -> Colour:
        if state == P.ATTACK:
            return PLAYER_LIGHT[k]
        if state == P.STUN:
            return STUN_FILL
        if state == P.TAUNT:
            return _mix(PLAYER_MAIN[k], TAUNT_FILL, 0.6)
        return PLAYER_MAIN[k]

    def _draw_visor(self, world: np.ndarray, x: float, y: float, facing: float) -> None:
        """A dark visor with a bright eye on the facing side."""
        cam = self.camera
        fill_rect(world, *cam.box(x + facing * 0.2, y - 0.22, 0.36, 0.16), (18, 20, 28))
        fill_rect(world, *cam.box(x + facing * 0.3, y - 0.22, 0.08, 0.08), (255, 255, 255))

    def _draw_held_weapon(self, world: np.ndarray, s: MatchState, row: int, k: int) -> None:
        """The weapon held out from the body's front edge, thrust further while attacking."""
        cam, weapon = self.camera, int(s.weapon[row, k])
        x, y, facing = float(s.x[row, k]), float(s.y[row, k]), float(s.facing[row, k]) or 1.0
        front = x + facing * (self.params.body_w / 2 + (0.3 if int(s.state[row, k]) == P.ATTACK else 0.0))
        if weapon == P.SPEAR:
            fill_rect(world, *cam.box(front + facing * 0.45, y + 0.05, 0.9, 0.12), SPEAR_SHAFT)
            fill_rect(world, *cam.box(front + facing * 0.95, y + 0.05, 0.3, 0.24), SPEAR_TIP)
        elif weapon == P.HAMMER:
            fill_rect(world, *cam.box(front + facing * 0.25, y + 0.05, 0.5, 0.12), HAMMER_HANDLE)
            head = cam.box(front + facing * 0.6, y + 0.05, 0.34, 0.54)
            fill_rect(world, *head, HAMMER_HEAD)
            outline_rect(world, *head, (30, 30, 36), 1)

    def _on_screen(self, x: float, y: float) -> bool:
        col, r = self.world_to_pixel(x, y)
        return 0 <= col < self.width and 0 <= r < self.world_h

    def _draw_offscreen_marker(self, world: np.ndarray, x: float, y: float, k: int) -> None:
        """A tab at the screen edge where a knocked-away player is."""
        col, r = self.world_to_pixel(x, y)
        size = int(10 * self.u)
        col = min(max(col, size), self.width - size - 1)
        r = min(max(r, size), self.world_h - size - 1)
        fill_rect(world, col - size, r - size, col + size, r + size, PLAYER_MAIN[k])
        outline_rect(world, col - size, r - size, col + size, r + size, PLAYER_LIGHT[k], 2)
        self.text.draw(world, col, r - int(8 * self.u), PLAYER_LABELS[k], int(11 * self.u), (255, 255, 255), "c")

    # --- hitbox overlay ------------------------------------------------------------
    def _draw_hitboxes(self, world: np.ndarray, s: MatchState, row: int) -> None:
        """Hurtboxes, and the hitboxes live in the frame just run (their capsules' bounding boxes)."""
        p, cam = self.params, self.camera
        hurt_w, hurt_h = to_world(p.hurt_w_raw), to_world(p.hurt_h_raw)
        for k in range(2):
            if int(s.state[row, k]) not in (P.DODGE, P.KO):
                box = cam.box(float(s.hurt_x[row, k]), float(s.hurt_y[row, k]), hurt_w, hurt_h)
                outline_rect(world, *box, HURTBOX, 1)
        for k in range(2):
            colour = HITBOX_SPENT if bool(s.power_victim[row, k]) else HITBOX
            for cx, cy, w, h in live_hitboxes(s, row, k):
                box = cam.box(cx, cy, w, h)
                blend_rect(world, *box, colour, 0.4)
                outline_rect(world, *box, colour, 2)

    # --- HUD -----------------------------------------------------------------------
    def _draw_hud(self, frame: np.ndarray, s: MatchState, row: int, max_timesteps: int) -> None:
        u, top = self.u, self.world_h
        panel_w = min(int(290 * u), self.width // 2 - int(70 * u))
        for k in range(2):
            panel = self._panel(s, row, k, panel_w)
            x0 = int(8 * u) if k == 0 else self.width - panel_w - int(8 * u)
            frame[top + 2 : top + 2 + panel.shape[0], x0 : x0 + panel_w] = panel
        remaining = max(max_timesteps - int(s.frame[row]), 0) / P.FPS
        secs = math.ceil(remaining - 1e-9)
        hud = frame[top:]
        self.text.draw(hud, self.width // 2, int(6 * u), f"{secs // 60}:{secs % 60:02d}", int(28 * u), TEXT, "c")
        self.text.draw(hud, self.width // 2, int(40 * u), "time left", int(10 * u), TEXT_DIM, "c")

    def _panel(self, s: MatchState, row: int, k: int, panel_w: int) -> np.ndarray:
        """One player's HUD panel, cached by what it shows (it changes a few times a second)."""
        percent = round(float(s.damage[row, k]) * 5 / 7)
        state, weapon, stocks = int(s.state[row, k]), int(s.weapon[row, k]), int(s.stocks[row, k])
        if state == P.KO and stocks <= 0:
            status = "Out of stocks"
        elif state == P.KO:
            status = f"KO - back in {math.ceil(int(s.timer[row, k]) / P.FPS)} s"
        elif state == P.ATTACK and int(s.move[row, k]) >= P.FIRST_MOVE_ID:
            status = f"Attack {P.MOVE_NAMES[int(s.move[row, k]) - P.FIRST_MOVE_ID]}"
        else:
            status = P.STATE_NAMES[state]
        key = (k, percent, stocks, weapon, status, panel_w)
        panel = self._panels.get(key)
        if panel is None:
            if len(self._panels) >= 1024:
                self._panels.clear()
            panel = self._panels[key] = self._draw_panel(k, percent, stocks, weapon, status, panel_w)
        return panel

    def _draw_panel(self, k: int, percent: int, stocks: int, weapon: int, status: str, panel_w: int) -> np.ndarray:
        u = self.u
        panel = np.empty((self.hud_h - 4, panel_w, 3), np.uint8)
        panel[:] = HUD_BG
        main, light = PLAYER_MAIN[k], PLAYER_LIGHT[k]
        fill_rect(panel, 0, int(4 * u), int(5 * u), panel.shape[0] - int(4 * u), main)  # colour bar
        x = int(12 * u)
        w = self.text.draw(panel, x, int(2 * u), PLAYER_LABELS[k], int(15 * u), light)
        self.text.draw(panel, x + w + int(8 * u), int(5 * u), status, int(11 * u), TEXT_DIM)
        self.text.draw(panel, x, int(20 * u), f"{percent}%", int(28 * u), damage_colour(percent))
        sx, sy, size = x + int(110 * u), int(26 * u), int(12 * u)
        for i in range(self.params.stocks):
            box = (sx + i * int(17 * u), sy, sx + i * int(17 * u) + size, sy + size)
            if i < stocks:
                fill_rect(panel, *box, main)
            outline_rect(panel, *box, light, 1)
        self.text.draw(panel, sx, sy + size + int(2 * u), "stocks", int(9 * u), TEXT_DIM)
        wx = sx + int(70 * u)
        self.text.draw(panel, wx, int(22 * u), P.WEAPON_NAMES[weapon], int(15 * u), TEXT)
        self.text.draw(panel, wx, sy + size + int(2 * u), "weapon", int(9 * u), TEXT_DIM)
        return panel

    def _draw_result(self, world: np.ndarray, result: int) -> None:
        text = {P.RESULT_P0_WINS: "P1 WINS", P.RESULT_P1_WINS: "P2 WINS", P.RESULT_DRAW: "DRAW"}.get(result)
        if text is None:
            return
        mask = self.text.mask(text, int(44 * self.u))
        cx, cy = self.width // 2, int(self.world_h * 0.3)
        h, w = mask.shape[:2]
        blend_rect(world, cx - w // 2 - 16, cy - 8, cx + w // 2 + 16, cy + h + 8, (0, 0, 0), 0.55)
        colour = {P.RESULT_P0_WINS: PLAYER_LIGHT[0], P.RESULT_P1_WINS: PLAYER_LIGHT[1]}.get(result, TEXT)
        blit_mask(world, cx - w // 2, cy, mask, colour)


# ==================================================================================
# Video writing
# ==================================================================================
class VideoFallbackWarning(UserWarning):
    """MP4 could not be written; the video went to ``path`` (a GIF) instead."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


def _ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (or named by IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# x264's cheapest preset: on these flat-coloured frames it reads as well as veryfast (PSNR ~36 dB both at
# CRF 23) for about half of ffmpeg's CPU time, at ~3x the file size (2.4 MB per 90 s instead of 0.8 MB).
# CPU is what is short on a 2-core machine that may be training at the same time.
MP4_PRESET = "ultrafast"
MP4_CRF = 23


class _FfmpegStream:
    """Raw RGB frames piped into an ffmpeg child that encodes H.264 as they arrive."""

    def __init__(self, exe: str, path: str, size: tuple[int, int], fps: float):
        w, h = size
        cmd = [
            exe,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{fps:g}",
            "-i",
            "-",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            MP4_PRESET,
            "-crf",
            str(MP4_CRF),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            path,
        ]
        # stderr to a file, not a pipe: a pipe nobody reads could fill up and stall ffmpeg.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the encoder
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        except BaseException:
            self._log.close()
            raise
        _widen_pipe(self._proc.stdin.fileno(), w * h * 3)

    def _error(self, what: str) -> RuntimeError:
        self._log.seek(0)
        tail = self._log.read()[-2000:].decode(errors="replace").strip()
        return RuntimeError(f"ffmpeg {what} (exit code {self._proc.poll()}): {tail or 'no message'}")

    def append(self, frame: np.ndarray) -> None:
        try:
            self._proc.stdin.write(frame.data)  # the array's own buffer: no bytes copy
        except OSError as err:  # BrokenPipeError: ffmpeg has exited
            self._proc.wait()
            raise self._error("stopped while writing") from err

    def close(self) -> None:
        with contextlib.suppress(OSError):  # it may have exited already; the exit code says how
            self._proc.stdin.close()
        code = self._proc.wait()
        try:
            if code != 0:
                raise self._error("failed")
        finally:
            self._log.close()

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._log.close()  # closing twice is allowed: abort may follow a failed close


def _widen_pipe(fd: int, frame_bytes: int) -> None:
    """Let the pipe hold a whole frame (Linux): ~15 % less time in write() than the 64 KiB default."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), min(max(frame_bytes, 65536), 1 << 20))
    except (ImportError, OSError):
        pass  # other systems, or above /proc/sys/fs/pipe-max-size: the default works, a little slower


def _start_ffmpeg(path: str, size: tuple[int, int], fps: float) -> _FfmpegStream:
    """Start the MP4 encoder (a separate function so tests can make it fail)."""
    return _FfmpegStream(_ffmpeg_exe(), path, size, fps)


class _GifStream:
    """An animated GIF written frame by frame (Pillow's own GIF writer keeps every frame in memory).

    Each frame is quantised by Pillow to its own 256-colour table and only the
    rectangle that changed since the previous frame is stored.
    """

    def __init__(self, path: str, fps: float):
        self._fp = open(path, "wb")  # noqa: SIM115  # stays open while frames stream in
        self._fps = fps
        self._prev: np.ndarray | None = None
        self._count = 0
        self._time_cs = 0  # centiseconds written so far; delays are rounded cumulatively

    def append(self, frame: np.ndarray) -> None:
        if self._prev is None:
            self._write_header(frame.shape[1], frame.shape[0])
            x0, y0, x1, y1 = 0, 0, frame.shape[1], frame.shape[0]
        else:
            x0, y0, x1, y1 = _changed_box(self._prev, frame)
        self._prev = frame.copy()
        table, flags, data = _encode_gif_image(frame[y0:y1, x0:x1])
        end_cs = round((self._count + 1) * 100 / self._fps)
        delay, self._time_cs = end_cs - self._time_cs, end_cs
        self._count += 1
        # Graphic control: disposal 1 (keep), so unchanged pixels stay from earlier frames.
        gce = b"\x21\xf9\x04" + bytes([1 << 2]) + delay.to_bytes(2, "little") + b"\x00\x00"
        descriptor = b"\x2c" + b"".join(v.to_bytes(2, "little") for v in (x0, y0, x1 - x0, y1 - y0))
        self._fp.write(gce + descriptor + bytes([flags]) + table + data)

    def _write_header(self, w: int, h: int) -> None:
        screen = w.to_bytes(2, "little") + h.to_bytes(2, "little") + b"\x00\x00\x00"  # no global table
        loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
        self._fp.write(b"GIF89a" + screen + loop)

    def close(self) -> None:
        if not self._fp.closed:
            self._fp.write(b"\x3b")
            self._fp.close()

    def abort(self) -> None:
        self._fp.close()


def _changed_box(prev: np.ndarray, frame: np.ndarray) -> tuple[int, int, int, int]:
    diff = (prev != frame).any(axis=2)
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if rows.size == 0:
        return 0, 0, 1, 1  # GIF frames cannot be empty: repeat one pixel
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _encode_gif_image(rgb: np.ndarray) -> tuple[bytes, int, bytes]:
    """(colour table, image descriptor flags, LZW image data) of one image, encoded by Pillow."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    quantised = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    quantised.save(buf, format="GIF", interlace=False)  # Pillow interlaces by default
    return _split_single_gif(buf.getvalue())


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos] != 0:
        pos += data[pos] + 1
    return pos + 1


def _split_single_gif(data: bytes) -> tuple[bytes, int, bytes]:
    """Take a one-image GIF apart: its colour table, the image descriptor's flags for that
    table used as a local one (interlacing kept), and its LZW-coded image data."""
    packed = data[10]
    pos = 13
    table, bits = b"", 0
    if packed & 0x80:  # global colour table
        bits = packed & 0x07
        table = data[pos : pos + 3 * (2 << bits)]
        pos += len(table)
    while data[pos] == 0x21:  # extensions Pillow may add: skip
        pos = _skip_sub_blocks(data, pos + 2)
    if data[pos] != 0x2C:
        raise ValueError("unexpected GIF layout from Pillow")
    image_packed = data[pos + 9]
    pos += 10
    if image_packed & 0x80:  # local colour table wins over the global one
        bits = image_packed & 0x07
        table = data[pos : pos + 3 * (2 << bits)]
        pos += len(table)
    end = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size byte
    return table, 0x80 | (image_packed & 0x40) | bits, data[pos:end]


class VideoWriter:
    """Streams frames to an MP4 (H.264) or GIF file; see :func:`open_video_writer`.

    ``path`` is the file actually written: it changes to a ``.gif`` if MP4 had to
    be abandoned, which is decided by the time the first frames are written.
    """

    EARLY_FRAMES = 30  # frames kept until ffmpeg has proved it works, to replay into a GIF

    def __init__(self, path: str | Path, fps: float = 30):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = str(path)
        self.fps = float(fps)
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._stream: _FfmpegStream | _GifStream | None = None
        self._early: list[np.ndarray] | None = None
        self._closed = False
        self._mp4 = not self.path.lower().endswith(".gif")
        if self._mp4:
            try:
                _ffmpeg_exe()
            except Exception as err:  # ImportError, or RuntimeError: no binary
                self._fall_back(err)

    def append(self, frame: np.ndarray) -> None:
        if self._closed:
            raise ValueError("append() on a closed video writer")
        frame = self._check(frame)
        if self._stream is None:
            self._open(frame.shape)
        if self._early is not None:
            self._early.append(frame.copy())
        try:
            self._stream.append(frame)
        except RuntimeError as err:
            if self._early is None:
                raise
            self._replay_as_gif(err)
        self.frames += 1
        if self._early is not None and len(self._early) >= self.EARLY_FRAMES:
            self._early = None  # ffmpeg is encoding fine

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream is None:
            return
        try:
            self._stream.close()
        except RuntimeError as err:
            if self._early is None:
                raise
            self._replay_as_gif(err)
            self._stream.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and self._stream is not None and not self._closed:
            self._closed = True
            self._stream.abort()
            return
        self.close()

    # --- internals -----------------------------------------------------------------
    def _check(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._mp4 and (frame.shape[0] % 2 or frame.shape[1] % 2):
            # yuv420p needs even sides: repeat the last row/column rather than fail.
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        if self._size is not None and frame.shape[:2] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {frame.shape[:2]}")
        return np.ascontiguousarray(frame)

    def _open(self, shape: tuple[int, ...]) -> None:
        self._size = (shape[0], shape[1])
        if self._mp4:
            try:
                self._stream = _start_ffmpeg(self.path, (shape[1], shape[0]), self.fps)
                self._early = []
                return
            except Exception as err:  # OSError: cannot execute; RuntimeError/ImportError: no ffmpeg
                self._fall_back(err)
        self._stream = _GifStream(self.path, self.fps)

    def _fall_back(self, err: BaseException) -> None:
        gif = str(Path(self.path).with_suffix(".gif"))
        message = f"cannot write MP4 {self.path!r} ({type(err).__name__}: {err}); writing GIF {gif!r} instead"
        warnings.warn(VideoFallbackWarning(message, gif), stacklevel=4)
        self.path, self._mp4 = gif, False

    def _replay_as_gif(self, err: BaseException) -> None:
        """ffmpeg died on the first frames: put them, and all later ones, in a GIF."""
        early, self._early = self._early or [], None
        stream, self._stream = self._stream, None  # aborted once: a failure below must not abort it again
        stream.abort()
        Path(self.path).unlink(missing_ok=True)
        self._fall_back(err)
        self._stream = _GifStream(self.path, self.fps)
        for frame in early:
            self._stream.append(frame)


def open_video_writer(path: str | Path, fps: float = 30) -> VideoWriter:
    """A streaming video writer: ``append(frame)``, ``close()``, usable as a context manager.

    ``.gif`` paths get an animated GIF. Anything else gets H.264 MP4 (yuv420p,
    libx264, preset ``ultrafast``, CRF 23, 30 fps) through the ffmpeg bundled with
    imageio-ffmpeg; if ffmpeg is missing or fails on the first frames, a GIF is
    written next to it instead (same name, ``.gif``) with a
    :class:`VideoFallbackWarning`. ``writer.path`` is the file written.
    """
    return VideoWriter(path, fps)
