"""A small symmetric RPC over two pipes, spoken by the grader and the sandboxed child.

Each side holds a :class:`Connection` on a pair of file descriptors and can ask the other to do
something; while it waits for the answer it serves whatever the other side asks in the meantime,
so calls nest (the grader calls a student's function, which calls a layer function the grader
handed it, which ...). One thread per side, one request at a time: a plain request/response stack.

**What travels.** A message is a fixed header, a JSON body and a raw byte blob::

    magic (8 bytes) | JSON length (8-byte little-endian) | blob length (8-byte little-endian)

Values are *data*: None, bool, int, float (nan and inf spelled out), str, NumPy scalars and
arrays of numbers, tuples, lists, dicts with str or int keys, and ``np.random.Generator`` (its
bit generator's state; the receiver builds a new Generator). An array's bytes go into the blob and
the JSON says where, with its dtype and shape; the receiver rebuilds it with ``np.frombuffer`` and
a copy. So the JSON body stays small, and it has a cap of its own (``Limits.max_json``), far
below the message's: a few bytes of JSON such as ``[],`` decode to many more bytes of objects.
Nothing is ever pickled, zipped or evaluated, so no bytes can turn into code or objects.

Anything else -- a function, a class, an instance, an object array -- stays where it is: the
sender keeps it in a table and sends a *reference*, which the receiver sees as a :class:`Proxy`.
A proxy can be called, and (on the side that allows it) asked for an attribute, an item or a
length; when a proxy is sent back, its owner gets the original object.

**Calls are pass-by-value-result.** The callee works on copies, so after a call it sends back the
final state of every argument that was an array, list or dict, and the caller updates its
originals in place. A forward pass that scribbles on its input is therefore seen, as it would be
in one process. An exception raised by the callee travels as its type name and message and is
raised on the caller's side as a :class:`RemoteError` subclass carrying that name (and deriving
from the matching built-in exception, so ``except NotImplementedError`` still works).

**Nothing received is trusted.** The decoder is strict: an unknown tag, a wrong type, a dtype that
is not plain numbers in native byte order, a length that does not add up, a value too deep, too
long or too large (:class:`Limits`) raises :class:`ProtocolError`. Every read has a deadline.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time
from dataclasses import dataclass

import numpy as np

MAGIC = b"NNWIRE01"
HEADER = struct.Struct("<8sQQ")     # magic, JSON length, blob length
MEMORY_EXIT = 86                    # the child's exit code after a MemoryError
ALIGN = 16                          # arrays start at multiples of this in the blob
NUMBER_KINDS = "biufc"              # bool, signed, unsigned, float, complex
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
CALL = "call"
SERVED_BY_CHILD = ("get", "names", "call", "getattr", "getitem", "len")
SERVED_BY_GRADER = (CALL,)          # the grader only runs the callables it handed out
MESSAGE_CHARS = 1000                # an exception's message, as sent
TYPE_CHARS = 100                    # an exception's type name
BUDGET_SLICE = 0.25                 # seconds between two askings of a budget deadline

_INT = re.compile(r"-?[0-9]+\Z")
_DTYPE = re.compile(r"[<|][biufc](1|2|4|8|16)\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class WireError(Exception):
    """The connection can no longer be used: the other side broke the protocol or went away."""


class ProtocolError(WireError):
    """Something received (or about to be sent) is not a message this protocol allows."""


class DeadlineExceeded(WireError):
    """A read or write did not complete before its deadline."""


class ConnectionLost(WireError):
    """The other side closed its end (it exited, or was killed)."""


class RemoteError(Exception):
    """An exception raised on the other side: its type name and message, nothing else.

    ``str()`` is the message exactly as it was on the other side (a remote ``KeyError('x')``
    reads ``'x'``, as the local one would).
    """

    remote_type = "RemoteError"

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# The built-in exceptions a remote error may also *be*, so that callers catching them still do.
# Order matters: the most specific first (the sender sends the first one its exception is).
_BASES = {cls.__name__: cls for cls in (
    NotImplementedError, RecursionError, KeyError, IndexError, LookupError, ZeroDivisionError,
    OverflowError, FloatingPointError, ArithmeticError, UnicodeError, ValueError, TypeError,
    AttributeError, AssertionError, MemoryError, PermissionError, OSError, RuntimeError)}
_remote_classes: dict[tuple[str, str], type] = {}


def remote_error(type_name: str, base: str, message: str) -> RemoteError:
    """The exception to raise for a remote one: a ``RemoteError`` named like the original."""
    if not _NAME.match(type_name) or len(type_name) > TYPE_CHARS:
        type_name = "RemoteError"
    key = (type_name, base if base in _BASES else "")
    cls = _remote_classes.get(key)
    if cls is None:
        bases = (RemoteError, _BASES[key[1]]) if key[1] else (RemoteError,)
        cls = type(type_name, bases, {"remote_type": type_name, "__str__": RemoteError.__str__})
        _remote_classes[key] = cls
    return cls(message)


def _builtin_base(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls.__name__ in _BASES and _BASES[cls.__name__] is cls:
            return cls.__name__
    return ""


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What one message may hold; a message past any of them is refused."""

    max_bytes: int = 256 << 20      # JSON body + blob
    # The JSON body alone. Arrays travel in the blob, so the JSON only holds small values and
    # the tags of the rest; but every 3 bytes of it (``[],``) can decode to a Python object of
    # ~60 bytes, so it is capped far below ``max_bytes``. The real checks' largest body is
    # about 10 KB (the job: the cells' sources; tests/autograder/test_checks.py measures it).
    max_json: int = 8 << 20
    max_depth: int = 32             # containers inside containers
    max_items: int = 1_000_000      # values in one message
    max_str: int = 1 << 20          # characters of one string
    max_int_digits: int = 400       # decimal digits of one int
    max_ndim: int = 32              # dimensions of one array


# ---------------------------------------------------------------------------------------------
# Proxies
# ---------------------------------------------------------------------------------------------
class Proxy:
    """An object that lives on the other side. Calls, attributes, items and ``len`` are requests.

    Dunder attributes are never forwarded: Python and NumPy probe objects for ``__array__`` and
    friends, and those probes must stay local (and must not reach into the other side's objects).
    For the same reason NumPy cannot convert a proxy: ``np.asarray(proxy)`` raises TypeError.
    """

    __slots__ = ("_conn", "_id")

    def __init__(self, conn: "Connection", ref: int):
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_id", ref)

    def __call__(self, *args, **kwargs):
        return self._conn.call(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._conn.request("getattr", self, name)

    def __setattr__(self, name, value):
        raise AttributeError("a remote object's attributes cannot be set")

    def __getitem__(self, key):
        return self._conn.request("getitem", self, key)

    def __len__(self) -> int:
        return self._conn.request("len", self)

    def __repr__(self) -> str:
        return f"<remote object #{self._id}>"

    def __array__(self, *args, **kwargs):
        # Without this NumPy would treat a proxy with a length as a nested sequence and explore
        # it element by element, one request each (a self-similar object: without end). Arrays
        # travel as data; an object that stayed on the other side is not one.
        raise TypeError("an object of the other side is not an array of numbers")


# ---------------------------------------------------------------------------------------------
# Encoding: a value becomes JSON plus slices of the blob
# ---------------------------------------------------------------------------------------------
def _send_dtype(dtype: np.dtype) -> bool:
    return (dtype.kind in NUMBER_KINDS and dtype.fields is None and dtype.subdtype is None
            and dtype.itemsize <= 16)


class _Encoder:
    """One message's worth of encoding: the blob parts and the running totals."""

    def __init__(self, conn: "Connection"):
        self.conn = conn
        self.limits = conn.limits
        self.parts: list = []
        self.size = 0
        self.items = 0

    def value(self, v, depth: int = 0):
        limits = self.limits
        if depth > limits.max_depth:
            raise ProtocolError(f"a value nested more than {limits.max_depth} deep")
        self.items += 1
        if self.items > limits.max_items:
            raise ProtocolError(f"more than {limits.max_items} values in one message")
        t = type(v)
        if v is None:
            return ["none"]
        if t is bool:
            return ["bool", v]
        if t is int:
            if v.bit_length() > limits.max_int_digits * 3.32:
                return self.ref(v)
            return ["int", str(v)]
        if t is float:
            return ["float", v if math.isfinite(v) else repr(v)]
        if t is str:
            if len(v) > limits.max_str or not _encodable(v):
                return self.ref(v)
            return ["str", v]
        if t is Proxy:
            if v._conn is not self.conn:
                raise ProtocolError("a remote object of another connection")
            return ["back", v._id]
        if isinstance(v, np.generic) and _send_dtype(v.dtype):
            return self.array(np.asarray(v), scalar=True)
        if isinstance(v, np.ndarray) and _send_dtype(v.dtype):
            return self.array(v.view(np.ndarray), scalar=False)
        if t is tuple or t is list:
            return ["tuple" if t is tuple else "list", [self.value(x, depth + 1) for x in v]]
        if t is dict and all(type(k) is str or type(k) is int for k in v):
            return ["dict", [[self.value(k, depth + 1), self.value(x, depth + 1)]
                             for k, x in v.items()]]
        if t is np.random.Generator:
            return ["rng", self.value(v.bit_generator.state, depth + 1)]
        return self.ref(v)

    def ref(self, v):
        return ["ref", self.conn.keep(v)]

    def array(self, a: np.ndarray, scalar: bool):
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if not a.flags.c_contiguous:
            a = np.array(a, order="C")
        if a.ndim > self.limits.max_ndim:
            raise ProtocolError(f"an array of more than {self.limits.max_ndim} dimensions")
        pad = -self.size % ALIGN
        if pad:
            self.parts.append(bytes(pad))
            self.size += pad
        offset = self.size
        if a.nbytes:
            self.parts.append(memoryview(a.reshape(-1)).cast("B"))
        self.size += a.nbytes
        if self.size > self.limits.max_bytes:
            raise ProtocolError(f"a message larger than {self.limits.max_bytes} bytes")
        dtype = a.dtype.str if a.dtype.itemsize > 1 else "|" + a.dtype.str[1:]
        return ["array", dtype, list(a.shape), offset, scalar]


def _encodable(s: str) -> bool:
    """Whether ``s`` is valid text (no lone surrogates), so that it survives UTF-8."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Decoding: strictly, every field checked
# ---------------------------------------------------------------------------------------------
def _refuse_constant(name):
    raise ProtocolError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        raise ProtocolError("a JSON number too long")
    return int(text)


class _Decoder:
    def __init__(self, conn: "Connection", blob: bytes):
        self.conn = conn
        self.limits = conn.limits
        self.blob = blob
        self.items = 0
        self.origins: dict[int, tuple] = {}   # id(array) -> (dtype, shape, offset): for result

    def value(self, e, depth: int = 0):
        limits = self.limits
        if depth > limits.max_depth:
            raise ProtocolError(f"a value nested more than {limits.max_depth} deep")
        self.items += 1
        if self.items > limits.max_items:
            raise ProtocolError(f"more than {limits.max_items} values in one message")
        if type(e) is not list or not e or type(e[0]) is not str:
            raise ProtocolError("a value is not a tagged list")
        tag, n = e[0], len(e)
        if tag == "none" and n == 1:
            return None
        if n == 2:
            x = e[1]
            if tag == "bool" and type(x) is bool:
                return x
            if tag == "int" and type(x) is str and len(x) <= limits.max_int_digits + 1 and _INT.match(x):
                return int(x)
            if tag == "float":
                if type(x) is float and math.isfinite(x):
                    return x
                if x in ("nan", "inf", "-inf"):
                    return float(x)
            if tag == "str" and type(x) is str and len(x) <= limits.max_str and _encodable(x):
                return x
            if (tag == "list" or tag == "tuple") and type(x) is list:
                items = [self.value(i, depth + 1) for i in x]
                return items if tag == "list" else tuple(items)
            if tag == "dict" and type(x) is list:
                return self.dict(x, depth)
            if tag == "rng":
                return self.rng(self.value(x, depth + 1))
            if tag == "ref" and type(x) is int and x > 0:
                return Proxy(self.conn, x)
            if tag == "back" and type(x) is int:
                return self.conn.own(x)
        if tag == "array" and n == 5:
            return self.array(*e[1:])
        raise ProtocolError(f"not a value: tag {tag[:20]!r} with {n - 1} fields")

    def dict(self, pairs: list, depth: int) -> dict:
        out = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise ProtocolError("a dict entry is not a pair")
            key = self.value(pair[0], depth + 1)
            if type(key) is not str and type(key) is not int:
                raise ProtocolError("a dict key is not a str or an int")
            out[key] = self.value(pair[1], depth + 1)
        return out

    def array(self, dtype, shape, offset, scalar):
        if type(dtype) is not str or not _DTYPE.match(dtype):
            raise ProtocolError(f"not a dtype of plain numbers: {str(dtype)[:20]!r}")
        try:
            d = np.dtype(dtype)
        except TypeError:  # e.g. "<b16" or "|f1": the pattern allows what NumPy has no type for
            raise ProtocolError(f"not a dtype of plain numbers: {dtype}") from None
        if not (_send_dtype(d) and d.isnative):
            raise ProtocolError(f"not a native dtype of plain numbers: {dtype}")
        if (type(shape) is not list or len(shape) > self.limits.max_ndim
                or not all(type(s) is int and s >= 0 for s in shape)):
            raise ProtocolError("not an array shape")
        # Every extent, even of an empty array, must make an array NumPy can hold: a shape such
        # as (0, 2**62, 2**62) has no bytes to check against the blob.
        if math.prod(s for s in shape if s) * d.itemsize > self.limits.max_bytes and 0 in shape:
            raise ProtocolError("an empty array with an absurd shape")
        if type(scalar) is not bool or (scalar and shape):
            raise ProtocolError("not an array's scalar flag")
        count = math.prod(shape)
        nbytes = count * d.itemsize
        if type(offset) is not int or offset < 0 or offset + nbytes > len(self.blob):
            raise ProtocolError("an array outside the blob")
        try:
            a = np.frombuffer(self.blob, dtype=d, count=count, offset=offset).reshape(shape).copy()
        except (ValueError, OverflowError, MemoryError) as exc:
            raise ProtocolError(f"not an array NumPy can hold ({type(exc).__name__})") from None
        self.origins[id(a)] = (d, tuple(shape), offset)
        return a[()] if scalar else a

    def rng(self, state) -> np.random.Generator:
        if type(state) is not dict or state.get("bit_generator") not in BIT_GENERATORS:
            raise ProtocolError("not the state of a NumPy bit generator")
        try:
            bit_generator = getattr(np.random, state["bit_generator"])()
            bit_generator.state = state
        except Exception as exc:  # whatever NumPy makes of a malformed state
            raise ProtocolError(f"not the state of a NumPy bit generator ({type(exc).__name__})")
        return np.random.Generator(bit_generator)

    def unchanged(self, a) -> bool:
        """Whether the array ``a`` this decoder made still holds exactly the bytes it arrived with."""
        origin = self.origins.get(id(a))
        if origin is None or type(a) is not np.ndarray:
            return False
        dtype, shape, offset = origin
        if a.dtype != dtype or a.shape != shape:
            return False
        return a.tobytes() == memoryview(self.blob)[offset:offset + a.nbytes]


def _field(body: dict, name: str, kind: type):
    value = body.get(name)
    if type(value) is not kind:
        raise ProtocolError(f"message field {name!r} is not a {kind.__name__}")
    return value


def _update_in_place(original, final) -> None:
    """Make ``original`` (an argument the caller still holds) look like the callee left it."""
    if type(original) is np.ndarray:
        if (type(final) is np.ndarray and final.shape == original.shape
                and final.dtype == original.dtype and original.flags.writeable):
            np.copyto(original, final)
    elif type(original) is dict and type(final) is dict:
        original.clear()
        original.update(final)
    elif type(original) is list and type(final) is list:
        original[:] = final


# ---------------------------------------------------------------------------------------------
# The connection
# ---------------------------------------------------------------------------------------------
class Connection:
    """One side of the protocol, on a readable and a writable file descriptor.

    ``serve`` names the built-in requests this side answers (:data:`SERVED_BY_CHILD` or
    :data:`SERVED_BY_GRADER`); ``ops`` adds named requests of its own (``name -> function``);
    ``namespace`` is what ``get`` and ``names`` look in. ``timeout`` bounds every read and write
    (None: wait for ever), and ``deadline`` (a ``time.monotonic()`` instant, or None) bounds them
    all. ``on_note`` receives the other side's one-way notes. ``catch`` is what a served request
    may raise and still be answered (the child catches everything the student's code raises,
    the grader only ``Exception``); ``memory_exit``, when set, ends the process with that code on
    a MemoryError instead.
    """

    def __init__(self, rfd: int, wfd: int, *, limits: Limits = Limits(),
                 timeout: float | None = None, serve=SERVED_BY_GRADER, ops=None, namespace=None,
                 on_note=None, catch: type = Exception, memory_exit: int | None = None):
        self.rfd, self.wfd = rfd, wfd
        self.limits = limits
        self.timeout = timeout
        self.deadline: float | None = None
        self.serve = frozenset(serve)
        self.ops = dict(ops or {})
        self.namespace = namespace
        self.on_note = on_note
        self.catch = catch
        self.memory_exit = memory_exit
        self.broken: WireError | None = None
        self._table: dict[int, object] = {}     # reference -> object sent by reference
        self._refs: dict[int, int] = {}         # id(object) -> reference
        self._next = 1
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._rpoll = select.poll()
        self._rpoll.register(rfd, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(wfd, select.POLLOUT)

    # --- the table of objects sent by reference ----------------------------------------------
    def keep(self, obj) -> int:
        ref = self._refs.get(id(obj))
        if ref is None or self._table.get(ref) is not obj:
            ref, self._next = self._next, self._next + 1
            self._table[ref] = obj
            self._refs[id(obj)] = ref
        return ref

    def own(self, ref: int):
        if ref not in self._table:
            raise ProtocolError(f"a reference to no object of ours (#{ref})")
        return self._table[ref]

    def owns(self, obj) -> bool:
        ref = self._refs.get(id(obj))
        return ref is not None and self._table.get(ref) is obj

    def forget(self) -> None:
        """Drop every object sent by reference (the other side's proxies of them go stale)."""
        self._table.clear()
        self._refs.clear()

    # --- asking ------------------------------------------------------------------------------
    def request(self, op: str, *args):
        """Ask the other side to run ``op`` on ``args``; serve its requests until it answers."""
        value, _ = self._request(op, args)
        return value

    def call(self, target, args: tuple, kwargs: dict):
        """Call a remote ``target``; the arrays, lists and dicts passed come back updated."""
        value, back = self._request(CALL, (target, list(args), dict(kwargs)))
        if back is not None:
            if (type(back) is not tuple or len(back) != 2 or type(back[0]) is not list
                    or len(back[0]) != len(args) or type(back[1]) is not dict):
                raise self._break(ProtocolError("a call's results do not match its arguments"))
            for original, final in zip(args, back[0]):
                if final is not None:
                    _update_in_place(original, final)
            for name, final in back[1].items():
                if final is not None and name in kwargs:
                    _update_in_place(kwargs[name], final)
        return value

    def note(self, text: str) -> None:
        """A one-way message (the child's "start X" / "done X")."""
        self._send({"t": "note", "text": text[:MESSAGE_CHARS]}, [])

    def _request(self, op: str, args: tuple):
        if self.broken is not None:
            raise self.broken
        enc = _Encoder(self)
        self._send({"t": "req", "op": op, "args": enc.value(list(args))}, enc.parts, enc.size)
        while True:
            body, dec = self._receive()
            kind = body["t"]
            if kind == "req":
                self._serve(body, dec)
            elif kind == "note":
                if self.on_note is not None:
                    try:
                        self.on_note(body["text"])
                    except WireError as exc:  # the listener refused it: so does the connection
                        raise self._break(exc)
            elif kind == "ok":
                try:
                    value = dec.value(body["value"])
                    back = dec.value(body["back"]) if "back" in body else None
                except WireError as exc:
                    raise self._break(exc)
                return value, back
            else:  # "err"
                raise remote_error(body["type"], body["base"], body["message"])

    # --- answering ---------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Answer requests until the other side closes its end."""
        while True:
            try:
                body, dec = self._receive()
            except ConnectionLost:
                return
            if body["t"] != "req":
                raise self._break(ProtocolError(f"an unasked-for {body['t']!r} message"))
            self._serve(body, dec)

    def _serve(self, body: dict, dec: _Decoder) -> None:
        op = body["op"]
        try:
            try:
                args = dec.value(body["args"])
            except WireError as exc:  # a bad value inside a sound message: refuse this request
                raise PermissionError(f"the request's arguments were refused: {exc}") from None
            if type(args) is not list:
                raise PermissionError("the request's arguments are not a list")
            if op == CALL and CALL in self.serve:
                value, back = self._call(args, dec)
            elif op in self.ops:
                value, back = self.ops[op](*args), None
            elif op in self.serve:
                value, back = self._builtin(op, args), None
            else:
                raise PermissionError(f"{op[:40]!r} is not served here")
        except BaseException as exc:
            if (isinstance(exc, WireError) and self.broken is not None) or not isinstance(exc, self.catch):
                raise  # this connection failed (not a student's imitation of it), or Ctrl-C
            if isinstance(exc, MemoryError) and self.memory_exit is not None:
                os._exit(self.memory_exit)
            self._send({"t": "err", "type": type(exc).__name__[:TYPE_CHARS],
                        "base": _builtin_base(exc), "message": _message(exc)}, [])
            return
        enc = _Encoder(self)
        try:
            reply = {"t": "ok", "value": enc.value(value)}
            if back is not None:
                reply["back"] = enc.value(back)
            head = self._frame(reply, enc.size)
        except Exception as exc:  # e.g. a result too large to send: the caller is told why
            self._send({"t": "err", "type": type(exc).__name__[:TYPE_CHARS], "base": "",
                        "message": _message(exc)}, [])
            return
        self._send_frame(head, enc.parts)

    def _target(self, target):
        if not self.owns(target):
            raise PermissionError("only objects this side handed out can be used")
        return target

    def _call(self, args: list, dec: _Decoder):
        if len(args) != 3 or type(args[1]) is not list or type(args[2]) is not dict:
            raise PermissionError("a call needs a target, a list and a dict")
        target, positional, keywords = self._target(args[0]), args[1], args[2]
        if not callable(target) or not all(type(k) is str for k in keywords):
            raise PermissionError("not a call of a callable with named arguments")
        value = target(*positional, **keywords)

        def final(x):
            if type(x) is list or type(x) is dict:
                return x
            if type(x) is np.ndarray and not dec.unchanged(x):
                return x
            return None

        return value, ([final(x) for x in positional], {k: final(x) for k, x in keywords.items()})

    def _builtin(self, op: str, args: list):
        if op == "get" and len(args) == 1 and type(args[0]) is str:
            return self.namespace[args[0]]
        if op == "names" and not args:
            return [k for k in self.namespace if type(k) is str][: self.limits.max_items // 2]
        if op == "getattr" and len(args) == 2 and type(args[1]) is str:
            if args[1].startswith("__"):
                raise PermissionError("dunder attributes are not served")
            return getattr(self._target(args[0]), args[1])
        if op == "getitem" and len(args) == 2:
            return self._target(args[0])[args[1]]
        if op == "len" and len(args) == 1:
            return len(self._target(args[0]))
        raise PermissionError(f"malformed {op!r} request")

    # --- framing -----------------------------------------------------------------------------
    def _break(self, exc: WireError) -> WireError:
        if self.broken is None:
            self.broken = exc
        return self.broken

    def _frame(self, body: dict, blob_size: int) -> bytes:
        """The header and JSON body of a message; ProtocolError if the other side would refuse it."""
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")
        if len(data) > self.limits.max_json:
            raise ProtocolError(f"a JSON body larger than {self.limits.max_json} bytes")
        if len(data) + blob_size > self.limits.max_bytes:
            raise ProtocolError(f"a message larger than {self.limits.max_bytes} bytes")
        return HEADER.pack(MAGIC, len(data), blob_size) + data

    def _send(self, body: dict, parts: list, blob_size: int = 0) -> None:
        if self.broken is not None:
            raise self.broken
        self._send_frame(self._frame(body, blob_size), parts)

    def _send_frame(self, head: bytes, parts: list) -> None:
        if self.broken is not None:
            raise self.broken
        try:
            self._write([head, *parts])
        except WireError as exc:
            raise self._break(exc)

    def _receive(self) -> tuple[dict, _Decoder]:
        if self.broken is not None:
            raise self.broken
        try:
            until = None if self.timeout is None else time.monotonic() + self.timeout
            magic, json_len, blob_len = HEADER.unpack(self._read(HEADER.size, until))
            if magic != MAGIC:
                raise ProtocolError("not a message (bad magic)")
            # Both caps are checked here, from the header, before a byte of the body is read.
            if json_len == 0 or json_len > self.limits.max_json:
                raise ProtocolError(f"a JSON body of {json_len} bytes "
                                    f"(at most {self.limits.max_json})")
            if json_len + blob_len > self.limits.max_bytes:
                raise ProtocolError(f"a message of {json_len + blob_len} bytes "
                                    f"(at most {self.limits.max_bytes})")
            text = self._read(json_len, until)
            blob = self._read(blob_len, until)
            body = self._parse(text)
        except WireError as exc:
            raise self._break(exc)
        return body, _Decoder(self, blob)

    def _parse(self, text: bytes) -> dict:
        try:
            body = json.loads(text.decode("ascii"), parse_constant=_refuse_constant,
                              parse_int=_bounded_int)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"the body is not JSON ({type(exc).__name__})") from None
        if type(body) is not dict:
            raise ProtocolError("the body is not a JSON object")
        kind = body.get("t")
        fields = {"req": {"t", "op", "args"}, "ok": {"t", "value"}, "note": {"t", "text"},
                  "err": {"t", "type", "base", "message"}}.get(kind)
        if fields is None or not (set(body) == fields or (kind == "ok" and set(body) == fields | {"back"})):
            raise ProtocolError(f"not a message of this protocol (kind {str(kind)[:20]!r})")
        if kind == "req":
            _field(body, "op", str)
        elif kind == "note":
            if len(_field(body, "text", str)) > MESSAGE_CHARS:
                raise ProtocolError("a note too long")
        elif kind == "err":
            for name, cap in (("type", TYPE_CHARS), ("base", TYPE_CHARS), ("message", MESSAGE_CHARS)):
                if len(_field(body, name, str)) > cap:
                    raise ProtocolError(f"an error's {name} too long")
        return body

    def _left(self, until: float | None) -> float | None:
        """Seconds left before the nearest of ``until`` and ``self.deadline`` (None: no limit).

        ``deadline`` is a ``time.monotonic()`` instant, or an object with a ``left()`` method
        (a budget the caller counts its own way, e.g. in the other side's CPU time): then the
        wait is cut into short slices so that the budget is asked again.
        """
        now = time.monotonic()
        lefts = [] if until is None else [until - now]
        if hasattr(self.deadline, "left"):
            lefts.append(self.deadline.left())
        elif self.deadline is not None:
            lefts.append(self.deadline - now)
        if not lefts:
            return None
        left = min(lefts)
        if left <= 0:
            raise DeadlineExceeded("the other side did not answer in time")
        return min(left, BUDGET_SLICE) if hasattr(self.deadline, "left") else left

    def _read(self, n: int, until: float | None) -> bytes:
        chunks, got = [], 0
        self._left(until)
        while got < n:
            try:
                chunk = os.read(self.rfd, min(n - got, 1 << 20))
            except BlockingIOError:
                left = self._left(until)
                self._rpoll.poll(None if left is None else max(1, math.ceil(left * 1000)))
                continue
            except OSError as exc:
                raise ConnectionLost(f"the pipe failed ({exc.strerror})") from None
            if not chunk:
                raise ConnectionLost("the other side closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _write(self, chunks: list) -> None:
        until = None if self.timeout is None else time.monotonic() + self.timeout
        views = [memoryview(c).cast("B") for c in chunks if len(c)]
        while views:
            try:
                written = os.writev(self.wfd, views[:512])
            except BlockingIOError:
                left = self._left(until)
                self._wpoll.poll(None if left is None else max(1, math.ceil(left * 1000)))
                continue
            except OSError as exc:  # EPIPE: the reader is gone
                raise ConnectionLost(f"the pipe failed ({exc.strerror})") from None
            while written:
                if written >= len(views[0]):
                    written -= len(views.pop(0))
                else:
                    views[0] = views[0][written:]
                    written = 0


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a student's exception whose __str__ raises
        text = "(its message could not be read)"
    return text[:MESSAGE_CHARS]
