"""BMP and TIFF files written by hand, in the layouts PIL reads but does not write
(tests/decode_formats_vs_pil.py and tests/data/make_image_fixtures.py use them)."""

from __future__ import annotations

import struct

import numpy as np


def bmp(rgb: np.ndarray, bits: int, *, header: int = 40, compression: int = 0, masks=None, top_down=False,
        palette: np.ndarray | None = None, indices: np.ndarray | None = None) -> bytes:
    """A BMP written by hand: the layouts PIL reads but does not write."""
    height, width = rgb.shape[:2] if indices is None else indices.shape
    stride = ((width * bits + 31) // 32) * 4
    rows = []
    for y in range(height):
        if bits <= 8:
            row = np.zeros(stride * 8 // bits, np.uint8)
            row[:width] = indices[y]
            packed = np.packbits(np.unpackbits(row[:, None], axis=1)[:, 8 - bits:].reshape(-1))
            rows.append(packed.tobytes()[:stride])
            continue
        r, g, b = (rgb[y, :, c].astype(np.uint32) for c in range(3))
        if bits == 24:
            line = np.stack([b, g, r], 1).astype(np.uint8).tobytes()
        elif bits == 16:
            rm, gm, bm = masks or (0x7C00, 0x3E0, 0x1F)
            def field(v, m):
                shift, width_bits = (m & -m).bit_length() - 1, bin(m).count("1")
                return (v >> (8 - width_bits)) << shift
            line = (field(r, rm) | field(g, gm) | field(b, bm)).astype("<u2").tobytes()
        else:  # 32
            rm, gm, bm, am = masks or (0xFF0000, 0xFF00, 0xFF, 0)
            def field(v, m):
                return v << ((m & -m).bit_length() - 1) if m else 0
            line = (field(r, rm) | field(g, gm) | field(b, bm) | field(np.full_like(r, 200), am)).astype(
                "<u4").tobytes()
        rows.append(line + b"\0" * (stride - len(line)))
    pixels = b"".join(rows if top_down else rows[::-1])
    entry = 3 if header == 12 else 4
    table = b"" if palette is None else b"".join(bytes([b, g, r] + [0] * (entry - 3)) for r, g, b in palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        info = struct.pack("<IiiHHIIiiII", header, width, -height if top_down else height, 1, bits, compression,
                           len(pixels), 2835, 2835, 0 if palette is None else len(palette), 0)
        if compression == 3:
            info += struct.pack("<IIII", *(list(masks) + [0])[:4]) if header > 40 else struct.pack("<III",
                                                                                                   *masks[:3])
        info += b"\0" * (header - len(info)) if header > 40 else b""
    offset = 14 + len(info) + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + table + pixels


def tiff16(rgb: np.ndarray, big_endian: bool) -> bytes:
    """An uncompressed 16-bit RGB TIFF by hand (PIL does not write one)."""
    height, width = rgb.shape[:2]
    e = ">" if big_endian else "<"
    wide = (rgb.astype(np.uint16) * 257 + np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 200)
    pixels = wide.astype(e + "u2").tobytes()
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, len(pixels))]
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = ifd_at + ifd_size
    data_at = bits_at + 6
    ifd = struct.pack(e + "H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            ifd += struct.pack(e + "HHII", tag, kind, count, bits_at)
        elif tag == 273:
            ifd += struct.pack(e + "HHII", tag, kind, count, data_at)
        elif kind == 3:
            ifd += struct.pack(e + "HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack(e + "HHII", tag, kind, count, value)
    ifd += struct.pack(e + "I", 0)
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", ifd_at)
    return head + ifd + struct.pack(e + "HHH", 16, 16, 16) + pixels
