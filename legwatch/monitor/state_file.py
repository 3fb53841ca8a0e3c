"""State files: a nested plain-data state (such as ``StreamDetector.state()``) as bytes, and back.

The format is an uncompressed ``.npz`` (a zip archive as ``np.savez`` writes it): every numpy array
of the state is one ``.npy`` member, and one member ``meta.json`` holds everything else::

    {"format": "legwatch-state", "kind": "<kind>", "version": <int>, "state": <tree>}

In the tree, dicts, lists, strings, ints, finite floats, booleans and None are themselves (JSON
writes a float as its shortest repr, which reads back to the same double, and an int of any size
exactly); an array is ``{"$array": "<member>"}`` and a float that is not finite is
``{"$float": "nan" | "inf" | "-inf"}``. Dict keys are strings and never start with ``$``. Tuples,
numpy scalars and arrays of Python objects are refused: the state must already be plain data.

Why not pickle: loading a pickle runs whatever code the file names, so a checkpoint in the data
directory could run anything in the monitor, and a pickle stores the private attribute names of
the classes, so a refactor breaks old checkpoints silently. Here arrays are read with
``allow_pickle=False``, the file says what it holds (``kind``) and which layout it has
(``version``), and anything else is refused with a ``StateFileError`` that says why. Standard
library and numpy only.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np

FORMAT = "legwatch-state"
META = "meta.json"
_ZIP_MAGIC = b"PK\x03\x04"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StateFileError(ValueError):
    """The bytes are not a state file of the expected kind and version (the message says why)."""


def dumps(state: dict, *, kind: str, version: int) -> bytes:
    """``state`` (a dict of plain data and numpy arrays) as the bytes of a state file."""
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind must be a non-empty str, got {kind!r}")
    if type(version) is not int:
        raise TypeError(f"version must be an int, got {version!r}")
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays, "state")
    meta = {"format": FORMAT, "kind": kind, "version": version, "state": tree}
    text = json.dumps(meta, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(META, text)
    return buf.getvalue()


def loads(blob: bytes, *, kind: str, version: int) -> dict:
    """The state ``dumps`` wrote; ``StateFileError`` for anything that is not a state file of
    ``kind`` and ``version``."""
    data = bytes(blob)
    if data[:1] == b"\x80":
        raise StateFileError("not a state file: it looks like a pickle, and pickles are never loaded")
    if not data.startswith(_ZIP_MAGIC):
        raise StateFileError(f"not a state file: no npz (zip) archive (starts with {data[:8]!r})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if META not in npz.files:
                raise StateFileError(f"not a state file: the npz archive has no {META} member")
            raw = npz[META]
            if not isinstance(raw, bytes):
                raise StateFileError(f"damaged state file: {META} is not a JSON text")
            meta = _meta(raw)
            if meta.get("kind") != kind:
                raise StateFileError(f"state file is of kind {meta.get('kind')!r}, expected {kind!r}")
            if meta.get("version") != version or type(meta.get("version")) is not int:
                found = meta.get("version")
                raise StateFileError(f"state file has version {found!r}, expected version {version}")
            if "state" not in meta:
                raise StateFileError(f"damaged state file: {META} holds no state")
            members = {name for name in npz.files if name != META}
            used: set[str] = set()
            state = _decode(meta["state"], npz, members, used)
            if members - used:
                raise StateFileError(f"damaged state file: members {sorted(members - used)} are not referenced")
    except StateFileError:
        raise
    except Exception as e:  # zipfile.BadZipFile, a damaged .npy header, a truncated member, ...
        raise StateFileError(f"damaged state file: {type(e).__name__}: {_one_line(e)}") from None
    if not isinstance(state, dict):
        raise StateFileError("damaged state file: the state is not a dict")
    return state


def _meta(raw: bytes) -> dict:
    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    try:
        meta = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise StateFileError(f"damaged state file: {META} is not valid JSON ({_one_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise StateFileError(f"not a state file: {META} format is {found!r}, expected {FORMAT!r}")
    return meta


def _encode(v, arrays: dict[str, np.ndarray], path: str):
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int) and not isinstance(v, np.generic):
        return int(v)
    if isinstance(v, float) and not isinstance(v, np.generic):
        v = float(v)
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise TypeError(f"{path}: arrays of Python objects are not plain data")
        name = f"a{len(arrays)}"
        arrays[name] = v
        return {"$array": name}
    if isinstance(v, list):
        return [_encode(x, arrays, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str) or k.startswith("$"):
                raise TypeError(f"{path}: key {k!r} is not a string that does not start with '$'")
            out[k] = _encode(x, arrays, f"{path}.{k}")
        return out
    raise TypeError(f"{path}: {type(v).__name__} is not plain data")


def _decode(v, npz, members: set[str], used: set[str]):
    if isinstance(v, list):
        return [_decode(x, npz, members, used) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1 and "$array" in v:
        name = v["$array"]
        if not isinstance(name, str) or name not in members or name in used:
            raise StateFileError(f"damaged state file: bad array reference {name!r}")
        used.add(name)
        a = npz[name]
        if not isinstance(a, np.ndarray):
            raise StateFileError(f"damaged state file: member {name!r} is not an array")
        return a
    if len(v) == 1 and "$float" in v:
        if v["$float"] not in _NONFINITE:
            raise StateFileError(f"damaged state file: bad float {v['$float']!r}")
        return _NONFINITE[v["$float"]]
    if any(k.startswith("$") for k in v):
        raise StateFileError(f"damaged state file: unknown tag in {sorted(v)}")
    return {k: _decode(x, npz, members, used) for k, x in v.items()}


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or "no detail"
