"""Image folders hold PNG (16-bit, alpha), BMP, GIF and WebP as well as JPEG; files that are not
used are named by `folder_problems`. BMP and GIF bytes are written by hand (no imaging library)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import struct

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import folder_dataset
from inception_keras.data.folder import (
    EMPTY,
    IMAGE_EXTENSIONS,
    NESTED_FOLDER,
    PALETTE_BMP,
    UNDECODABLE,
    UNSUPPORTED,
    FolderProblem,
    describe_folder_problems,
    folder_files,
    folder_problems,
)
from inception_keras.data.preprocessing import decode_rgb

SIZE = 12


# --- Encoders written for the tests -----------------------------------------------------------


def bmp_bytes(pixels, bits=24, palette=None):
    """An uncompressed bottom-up BMP: 24-bit BGR, 32-bit BGRA, or 8-bit indices with `palette`."""
    height, width = pixels.shape[:2]
    if bits == 8:
        rows = [bytes(row) for row in pixels.astype(np.uint8)]
        colours = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    else:
        order = [2, 1, 0, 3][: bits // 8]  # RGB(A) -> BGR(A)
        rows = [pixels[y][:, order].astype(np.uint8).tobytes() for y in range(height)]
        colours = b""
    stride = (len(rows[0]) + 3) // 4 * 4
    data = b"".join(row.ljust(stride, b"\0") for row in reversed(rows))  # bottom row first
    offset = 14 + 40 + len(colours)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(data), 2835, 2835,
                       len(colours) // 4, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + colours + data


def gif_bytes(frames, palette):
    """A GIF89a of index frames ([H, W] ints < 4) over a 4-colour global palette.

    The LZW stream sends a clear code before every two pixels, so the decoder's table never
    grows past 3-bit codes: valid, uncompressed-size GIF data.
    """
    height, width = frames[0].shape
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x91, 0, 0))
    out += b"".join(bytes(colour) for colour in palette)
    clear, end = 4, 5
    for frame in frames:
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        pixels = [int(p) for p in frame.reshape(-1)]
        codes = []
        for start in range(0, len(pixels), 2):
            codes += [clear] + pixels[start : start + 2]
        codes.append(end)
        bits = sum(code << (3 * index) for index, code in enumerate(codes))
        data = bits.to_bytes((3 * len(codes) + 7) // 8, "little")
        out += b"\x02"  # LZW minimum code size
        for start in range(0, len(data), 255):
            block = data[start : start + 255]
            out += bytes([len(block)]) + block
        out += b"\x00"
    return bytes(out + b"\x3b")


def webp_bytes(pixels):
    pil = pytest.importorskip("PIL.Image")
    import io

    mode = {3: "RGB", 4: "RGBA"}[pixels.shape[-1]]
    buffer = io.BytesIO()
    # exact: keep the colour of transparent pixels
    pil.fromarray(pixels, mode).save(buffer, format="WEBP", lossless=True, exact=True)
    return buffer.getvalue()


def rgb(height, width, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels)).astype(np.uint8)


PALETTE = [(200, 30, 10), (0, 180, 60), (20, 40, 250), (255, 255, 255)]


# --- Decoding each format -----------------------------------------------------------------------


def decoded(data):
    return decode_rgb(tf.constant(data)).numpy()


def test_bmp_24_and_32_bit_decode_to_their_pixels():
    pixels = rgb(5, 7)  # 7 * 3 bytes per row: rows need padding
    np.testing.assert_array_equal(decoded(bmp_bytes(pixels)), pixels)
    rgba = rgb(4, 6, seed=1, channels=4)
    np.testing.assert_array_equal(decoded(bmp_bytes(rgba, bits=32)), rgba[..., :3])


def test_grey_8_bit_bmp_decodes_but_a_colour_palette_is_lost():
    indices = rgb(4, 5, channels=1)[..., 0]
    grey = [(i, i, i) for i in range(256)]
    np.testing.assert_array_equal(decoded(bmp_bytes(indices, 8, grey)), np.stack([indices] * 3, -1))
    colours = [(255 - i, i, 0) for i in range(256)]
    wrong = decoded(bmp_bytes(indices, 8, colours))
    assert not np.array_equal(wrong[..., 0], 255 - indices)  # what folder_problems warns about


def test_gif_first_frame_is_used():
    first = np.array([[0, 1, 2], [3, 2, 1]])
    second = np.array([[3, 3, 3], [3, 3, 3]])
    data = gif_bytes([first, second], PALETTE)
    assert tf.io.decode_gif(data).shape == (2, 2, 3, 3)  # really two frames
    np.testing.assert_array_equal(decoded(data), np.array(PALETTE, np.uint8)[first])


def test_16_bit_png_is_scaled_to_8_bits():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 65536, (6, 9, 3)).astype(np.uint16)
    pixels[0, 0] = (0, 65535, 32768)
    got = decoded(tf.io.encode_png(pixels).numpy())
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, pixels >> 8)  # the high byte, as convert_image_dtype
    assert np.abs(got - pixels / 257.0).max() < 1.0  # within one level of exact scaling
    np.testing.assert_array_equal(got[0, 0], (0, 255, 128))


@pytest.mark.parametrize("channels", [2, 4])  # grey + alpha, RGB + alpha
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_alpha_is_dropped(channels, dtype):
    pixels = rgb(5, 6, channels=channels).astype(dtype) * (257 if dtype == np.uint16 else 1)
    pixels[..., -1] = 0  # fully transparent: the colours must survive anyway
    got = decoded(tf.io.encode_png(pixels).numpy())
    colour = pixels[..., :-1] if channels == 4 else np.repeat(pixels[..., :1], 3, axis=-1)
    np.testing.assert_array_equal(got, colour // (257 if dtype == np.uint16 else 1))


@pytest.mark.skipif(".webp" not in IMAGE_EXTENSIONS, reason="this TensorFlow has no WebP decoder")
@pytest.mark.parametrize("channels", [3, 4])
def test_webp_with_and_without_alpha(channels):
    pixels = rgb(5, 6, channels=channels)
    np.testing.assert_array_equal(decoded(webp_bytes(pixels)), pixels[..., :3])


# --- Folders ------------------------------------------------------------------------------------

COLOURS = {"red": (220, 20, 20), "blue": (20, 40, 220)}


def solid(colour, height=16, width=20, channels=3):
    pixels = np.zeros((height, width, channels), np.uint8)
    pixels[..., :3] = colour
    if channels == 4:
        pixels[..., 3] = 128
    return pixels


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def mixed_folder(tmp_path):
    """Two classes, each image in another format, plus every kind of file that is not used."""
    root = tmp_path / "images"
    red, blue = COLOURS["red"], COLOURS["blue"]
    write(root / "red" / "a.bmp", bmp_bytes(solid(red)))
    write(root / "red" / "b.gif", gif_bytes([np.zeros((16, 20), int)], [red] + PALETTE[1:]))
    write(root / "red" / "c.png", tf.io.encode_png(solid(red).astype(np.uint16) * 257).numpy())
    write(root / "red" / "d.JPG", tf.io.encode_jpeg(solid(red), quality=95).numpy())
    write(root / "blue" / "a.png", tf.io.encode_png(solid(blue, channels=4)).numpy())
    write(root / "blue" / "b.bmp", bmp_bytes(solid(blue, channels=4), bits=32))
    write(root / "blue" / "c.jpeg", tf.io.encode_jpeg(solid(blue)).numpy())
    # not used:
    write(root / "red" / "scan.tif", b"II*\0 not read")
    write(root / "red" / "notes", b"no extension")
    write(root / "red" / "empty.jpg", b"")
    write(root / "red" / "page.jpg", b"<html>not an image</html>")
    truncated = tf.io.encode_png(rgb(30, 30)).numpy()
    write(root / "blue" / "broken.png", truncated[: len(truncated) // 2])
    write(root / "blue" / "more" / "x.jpg", tf.io.encode_jpeg(solid(blue)).numpy())
    write(root / "blue" / "palette.bmp", bmp_bytes(np.zeros((4, 4), int), 8, [blue] * 256))
    # hidden: ignored silently
    write(root / "red" / ".DS_Store", b"\0\0\0\1Bud1")
    write(root / "red" / "._d.JPG", b"\0\5\26\7 AppleDouble")
    return root


def test_folder_reads_every_format_with_its_label(mixed_folder):
    paths, labels = folder_files(str(mixed_folder), "train")
    names = sorted(os.path.relpath(p, mixed_folder) for p in paths)
    assert "red/a.bmp" in names and "red/b.gif" in names and "blue/b.bmp" in names
    assert not any(os.path.basename(n).startswith(".") for n in names)
    assert "red/scan.tif" not in names and "blue/more" not in names
    examples = list(folder_dataset(str(mixed_folder), "train", image_size=SIZE, is_training=False))
    good = {"red/a.bmp", "red/b.gif", "red/c.png", "red/d.JPG", "blue/a.png", "blue/b.bmp",
            "blue/c.jpeg", "blue/palette.bmp"}
    # classes have fewer than 10 images, so none is held out; the empty, HTML and truncated
    # files are dropped as corrupt records
    assert len(examples) == len(good)
    wrong = []
    for image, label in examples:
        class_name = ("blue", "red")[int(label)]
        expected = np.array(COLOURS[class_name]) / 127.5 - 1.0
        if not np.allclose(image.numpy().mean(axis=(0, 1)), expected, atol=0.05):
            wrong.append((class_name, image.numpy().mean()))
    assert wrong == [("blue", -1.0)]  # palette.bmp: index 0 read as black, as folder_problems says


def test_folder_problems_names_each_file_and_why(mixed_folder):
    problems = folder_problems(str(mixed_folder))
    got = {os.path.relpath(path, mixed_folder): reason for path, reason in problems}
    assert got == {
        "red/scan.tif": f"{UNSUPPORTED} (.tif)",
        "red/notes": f"{UNSUPPORTED} (no extension)",
        "red/empty.jpg": EMPTY,
        "red/page.jpg": UNDECODABLE,
        "blue/broken.png": UNDECODABLE,
        "blue/more": NESTED_FOLDER,
        "blue/palette.bmp": PALETTE_BMP,
    }
    assert all(isinstance(p, FolderProblem) for p in problems)
    assert [p.path for p in problems] == sorted(p.path for p in problems)
    listed = folder_problems(str(mixed_folder), decode=False)
    listed_only = {os.path.relpath(p, mixed_folder) for p, _ in listed}
    assert listed_only == {"red/scan.tif", "red/notes", "blue/more"}


def test_folder_problems_in_the_split_layout(tmp_path):
    root = tmp_path / "split"
    good = tf.io.encode_png(solid(COLOURS["red"])).numpy()
    write(root / "train" / "red" / "a.png", good)
    write(root / "train" / "red" / "b.webm", b"video")
    write(root / "validation" / "red" / "c.png", good)
    write(root / "validation" / "red" / "d.gif", b"GIF89a cut")
    problems = folder_problems(str(root))
    assert [(os.path.relpath(p, root), r) for p, r in problems] == [
        ("train/red/b.webm", f"{UNSUPPORTED} (.webm)"),
        ("validation/red/d.gif", UNDECODABLE),
    ]


def test_describe_folder_problems_groups_by_reason(mixed_folder):
    text = describe_folder_problems(folder_problems(str(mixed_folder)), root=str(mixed_folder), limit=1)
    lines = text.splitlines()
    assert f"{UNDECODABLE} (2): blue/broken.png and 1 more" in lines
    assert f"{EMPTY} (1): red/empty.jpg" in lines
    assert len(lines) == 6  # .tif and no-extension are separate reasons
    assert describe_folder_problems([]) == ""
