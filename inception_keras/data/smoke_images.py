"""Drawing the smoke dataset's images: 10 classes, each a distinct shape or texture in its own hue.

Every image varies in size (128-160 px), position, scale, colour jitter and noise, but a class
stays recognisable in any crop: its hue fills the foreground and tints the background.
"""

import colorsys

import numpy as np

SMOKE_CLASS_NAMES = (
    "red_circle",
    "orange_square",
    "yellow_triangle",
    "green_ring",
    "spring_cross",
    "cyan_diamond",
    "azure_horizontal_stripes",
    "violet_vertical_stripes",
    "magenta_checkerboard",
    "rose_dots",
)
MIN_SIDE, MAX_SIDE = 128, 160


def _shape_masks(dx, dy, r, xx, yy, freq, phase):
    distance = np.hypot(dx, dy)
    return (
        lambda: distance < r,
        lambda: np.maximum(np.abs(dx), np.abs(dy)) < 0.85 * r,
        lambda: (dy < 0.7 * r) & (np.abs(dx) < (dy + r) * 0.6),
        lambda: (distance > 0.55 * r) & (distance < r),
        lambda: (
            ((np.abs(dx) < 0.3 * r) & (np.abs(dy) < r)) | ((np.abs(dy) < 0.3 * r) & (np.abs(dx) < r))
        ),
        lambda: np.abs(dx) + np.abs(dy) < r,
        lambda: np.sin(yy * freq + phase) > 0,
        lambda: np.sin(xx * freq + phase) > 0,
        lambda: (np.floor(xx * freq / np.pi + phase) + np.floor(yy * freq / np.pi + phase)) % 2 == 0,
        lambda: (
            np.hypot((xx * freq / np.pi + phase) % 1 - 0.5, (yy * freq / np.pi + phase) % 1 - 0.5) < 0.3
        ),
    )


def _mask(label, height, width, rng):
    scale = min(height, width) / 2.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = (yy - height / 2.0) / scale, (xx - width / 2.0) / scale
    cy, cx = rng.uniform(-0.3, 0.3, size=2)
    r = rng.uniform(0.45, 0.75)
    freq, phase = rng.uniform(8.0, 14.0), rng.uniform(0.0, 2.0 * np.pi)
    return _shape_masks(xx - cx, yy - cy, r, xx, yy, freq, phase)[label]()


def _colour(hue, saturation, value):
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32) * 255.0


def draw_image(label, rng):
    """A uint8 [H, W, 3] image of class `label` (0..9), drawn with numpy's Generator `rng`."""
    height, width = rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2)
    hue = label / len(SMOKE_CLASS_NAMES) + rng.uniform(-0.02, 0.02)
    foreground = _colour(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    background = _colour(hue, rng.uniform(0.3, 0.6), rng.uniform(0.15, 0.35))
    mask = _mask(label, height, width, rng)[..., None]
    image = np.where(mask, foreground, background) + rng.normal(0.0, 8.0, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)
