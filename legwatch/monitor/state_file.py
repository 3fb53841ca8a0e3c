"""State files: a nested plain-data state (such as ``StreamDetector.state()``) as bytes, and back.

The format is an uncompressed ``.npz`` (a zip archive as ``np.savez`` writes it): the arrays of the
state, flattened and concatenated per dtype, are one ``.npy`` member each (a few members, not one
per array: a zip member costs more than the bytes of a small array), and one member ``meta.json``
holds everything else::

    {"format": "legwatch-state", "kind": "<kind>", "version": <int>, "state": <tree>}

In the tree, dicts, lists, strings, ints, finite floats, booleans and None are themselves (JSON
writes a float as its shortest repr, which reads back to the same double, and an int of any size
exactly); an array is ``{"$array": ["<member>", <offset>, [<shape>]]}`` (its elements start at
``offset`` in that member) and a float that is not finite is
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
    arrays: dict[str, list] = {}
    try:
        tree = _encode(state, arrays)
    except _NotPlain as e:
        raise TypeError(f"state{''.join(reversed(e.path))}: {e.what}") from None
    meta = {"format": FORMAT, "kind": kind, "version": version, "state": tree}
    text = json.dumps(meta, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    buf = io.BytesIO()
    np.savez(buf, **{_member(dt): np.concatenate([a.ravel() for a in parts]) for dt, (parts, _) in arrays.items()})
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
            members = {name: npz[name] for name in npz.files if name != META}
            if any(not isinstance(a, np.ndarray) or a.ndim != 1 for a in members.values()):
                raise StateFileError("damaged state file: a member is not a flat array")
            used: set[str] = set()
            state = _decode(meta["state"], members, used)
            if set(members) - used:
                raise StateFileError(f"damaged state file: members {sorted(set(members) - used)} are not referenced")
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


def _member(dtype: str) -> str:
    """The member name of the arrays of one dtype (``<f8`` -> ``f8``, ``|b1`` -> ``b1``)."""
    return dtype.lstrip("<>|=")


class _NotPlain(TypeError):
    """Raised inside ``_encode``; the path to the value is collected on the way out."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str] = []


def _encode(v, arrays: dict[str, list]):
    """``v`` as JSON-able data; its arrays are appended to ``arrays`` (dtype -> [parts, elements])."""
    t = type(v)
    if v is None or t is bool or t is str or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is dict:
        out = {}
        for k, x in v.items():
            if type(k) is not str or k.startswith("$"):
                raise _NotPlain(f"key {k!r} is not a string that does not start with '$'")
            try:
                out[k] = _encode(x, arrays)
            except _NotPlain as e:
                e.path.append(f".{k}")
                raise
        return out
    if t is list:
        items = []
        for i, x in enumerate(v):
            try:
                items.append(_encode(x, arrays))
            except _NotPlain as e:
                e.path.append(f"[{i}]")
                raise
        return items
    if t is np.ndarray:
        if v.dtype.kind not in "biuf":
            raise _NotPlain(f"arrays of dtype {v.dtype} are not plain numbers")
        dt = v.dtype.newbyteorder("<").str if v.dtype.byteorder == ">" else v.dtype.str
        slot = arrays.get(dt)
        if slot is None:
            slot = arrays[dt] = [[], 0]
        offset = slot[1]
        slot[0].append(v.astype(dt, copy=False))
        slot[1] += v.size
        return {"$array": [_member(dt), offset, list(v.shape)]}
    raise _NotPlain(f"{t.__name__} is not plain data")


def _decode(v, members: dict[str, np.ndarray], used: set[str]):
    if isinstance(v, list):
        return [_decode(x, members, used) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1 and "$array" in v:
        ref = v["$array"]
        try:
            name, offset, shape = ref
            flat = members[name]
            size = math.prod(shape)
            if type(offset) is not int or offset < 0 or any(type(n) is not int or n < 0 for n in shape):
                raise ValueError
            if offset + size > flat.size:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise StateFileError(f"damaged state file: bad array reference {ref!r}") from None
        used.add(name)
        return flat[offset : offset + size].reshape(shape).copy()
    if len(v) == 1 and "$float" in v:
        if v["$float"] not in _NONFINITE:
            raise StateFileError(f"damaged state file: bad float {v['$float']!r}")
        return _NONFINITE[v["$float"]]
    if any(k.startswith("$") for k in v):
        raise StateFileError(f"damaged state file: unknown tag in {sorted(v)}")
    return {k: _decode(x, members, used) for k, x in v.items()}


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or "no detail"
