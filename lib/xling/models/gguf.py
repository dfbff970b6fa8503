"""GGUF files without llama.cpp: the layout read from the header, completeness checks, and splicing
tensors between files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from xling.models.errors import ModelError, QuantizeError


def gguf_layout(path: str | os.PathLike[str]) -> dict:
    """Where things are in a GGUF file, read without decoding the metadata values (gguf-py's
    reader decodes the 262k-entry vocabulary element by element: 20 s per file here).
    Returns the header counts, the architecture, the byte range of the key-value section, the
    alignment, and per tensor its name, shape, type, offset (from the data start) and size in
    bytes. A file cut short raises ModelError."""
    import struct

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:4] != b"GGUF":
            raise ModelError(
                f"{path}: not a GGUF file (starts with {head[:4]!r}, expected b'GGUF')"
            )
        _, version, n_tensors, n_kv = struct.unpack("<4sIQQ", head)
        buf = f.read(64 << 20)  # metadata and tensor infos: a few MB before the data
    pos, alignment, arch = 0, 32, None

    def u32():
        nonlocal pos
        pos += 4
        return struct.unpack_from("<I", buf, pos - 4)[0]

    def u64():
        nonlocal pos
        pos += 8
        return struct.unpack_from("<Q", buf, pos - 8)[0]

    def string() -> bytes:
        nonlocal pos
        n = u64()
        pos += n
        return buf[pos - n : pos]

    def skip(vtype: int):
        nonlocal pos
        if vtype in fixed:
            pos += fixed[vtype]
        elif vtype == 8:
            string()
        elif vtype == 9:
            etype, count = u32(), u64()
            if etype in fixed:
                pos += fixed[etype] * count
            else:
                for _ in range(count):
                    skip(etype)
        else:
            raise ModelError(f"{path}: unknown metadata type {vtype}")

    try:
        for _ in range(n_kv):
            key = string()
            vtype = u32()
            if key == b"general.alignment" and vtype == 4:
                alignment = struct.unpack_from("<I", buf, pos)[0]
            if key == b"general.architecture" and vtype == 8:
                arch = buf[pos + 8 : pos + 8 + struct.unpack_from("<Q", buf, pos)[0]].decode()
            skip(vtype)
        kv_end = pos
        tensors = []
        for _ in range(n_tensors):
            name = string().decode()
            dims = [u64() for _ in range(u32())]
            ttype, offset = u32(), u64()
            tensors.append((name, dims, ttype, offset))
        if pos > len(buf):
            raise struct.error("header runs past the end of the file")
    except (struct.error, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: truncated or corrupt GGUF header ({err})") from err
    out = []
    for name, dims, ttype, offset in tensors:
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        except ValueError as err:
            raise ModelError(f"{path}: tensor {name} has unknown type {ttype}") from err
        n = 1
        for d in dims:
            n *= d
        out.append(
            {
                "name": name,
                "dims": dims,
                "type": ttype,
                "offset": offset,
                "nbytes": n // block * size,
            }
        )
    info_end = 24 + pos
    data_start = -(-info_end // alignment) * alignment
    return {
        "version": version,
        "n_kv": n_kv,
        "kv": (24, 24 + kv_end),
        "architecture": arch,
        "alignment": alignment,
        "data_start": data_start,
        "tensors": out,
    }


def check_gguf(path: str | os.PathLike[str]) -> dict:
    """Check that a GGUF file is complete; return its architecture and tensor count.

    Reads the header and the tensor table (no weights) and checks that the file holds every
    tensor's bytes, which catches a truncated download or an interrupted write.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: GGUF file not found")
    layout = gguf_layout(path)
    tensors = layout["tensors"]
    end = layout["data_start"] + max((t["offset"] + t["nbytes"] for t in tensors), default=0)
    size = path.stat().st_size
    if end > size:
        raise ModelError(f"{path}: truncated GGUF file ({size} bytes, tensors need {end})")
    return {"architecture": layout["architecture"], "n_tensors": len(tensors), "bytes": size}


def splice_gguf(low: Path, high: Path, out: Path, keep: list[str]) -> float:
    """A GGUF file whose tensors come from ``high`` when their name contains one of ``keep``
    and from ``low`` otherwise (two quantizations of one model, e.g. Q4_K_M with the attention
    weights at Q8_0): llama.cpp reads each tensor's own type. The metadata is ``low``'s, copied
    byte for byte. Returns the seconds it took."""
    import struct

    if out.exists():
        return 0.0
    t0 = time.perf_counter()

    lo, hi = gguf_layout(low), gguf_layout(high)
    if [t["name"] for t in lo["tensors"]] != [t["name"] for t in hi["tensors"]]:
        raise QuantizeError(f"{low.name} and {high.name} do not hold the same tensors")
    align = lo["alignment"]
    chosen = [
        (high, hi, b) if any(k in a["name"] for k in keep) else (low, lo, a)
        for a, b in zip(lo["tensors"], hi["tensors"], strict=True)
    ]
    # tensor infos with new offsets, each tensor's data aligned
    infos, offset = [], 0
    for _, _, t in chosen:
        name = t["name"].encode()
        infos.append(
            struct.pack("<Q", len(name))
            + name
            + struct.pack("<I", len(t["dims"]))
            + struct.pack(f"<{len(t['dims'])}Q", *t["dims"])
            + struct.pack("<IQ", t["type"], offset)
        )
        offset += -(-t["nbytes"] // align) * align
    tmp = out.with_name(out.name + ".partial")
    try:
        with low.open("rb") as f_lo, tmp.open("wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", lo["version"], len(chosen), lo["n_kv"]))
            f_lo.seek(lo["kv"][0])
            f.write(f_lo.read(lo["kv"][1] - lo["kv"][0]))
            f.write(b"".join(infos))
            f.write(b"\0" * (-f.tell() % align))
            handles = {low: f_lo}
            with high.open("rb") as f_hi:
                handles[high] = f_hi
                for path, layout, t in chosen:
                    src = handles[path]
                    src.seek(layout["data_start"] + t["offset"])
                    f.write(src.read(t["nbytes"]))
                    f.write(b"\0" * (-t["nbytes"] % align))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return time.perf_counter() - t0
