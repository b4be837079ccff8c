"""The pipe protocol between the grader and the sandboxed child (autograder/boxed/wire.py).

Two connections talk over real pipes inside this process: the "child" side serves requests in a
thread of its own (one thread per side, as in the real pair), the grader side asks. The second
half feeds the grader's side bytes written by hand, as a hostile child would.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time

import numpy as np
import pytest

from autograder.boxed import wire
from autograder.boxed.wire import (HEADER, MAGIC, Connection, ConnectionLost, DeadlineExceeded,
                                   Limits, ProtocolError, Proxy, RemoteError)


class Pair:
    """A grader-side connection and a child-side one serving ``namespace`` in a thread."""

    def __init__(self, namespace: dict, limits: Limits = Limits()):
        g_read, c_write = os.pipe()
        c_read, g_write = os.pipe()
        self.fds = (g_read, c_write, c_read, g_write)
        self.grader = Connection(g_read, g_write, limits=limits, timeout=10,
                                 serve=wire.SERVED_BY_GRADER)
        self.child = Connection(c_read, c_write, limits=limits, serve=wire.SERVED_BY_CHILD,
                                namespace=namespace, catch=BaseException)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.child.serve_forever()
        except wire.WireError:
            pass

    def close(self):
        g_read, c_write, c_read, g_write = self.fds
        os.close(g_write)            # the child sees the end of its input and returns
        self.thread.join(5)
        for fd in (g_read, c_write, c_read):
            os.close(fd)


@pytest.fixture
def pair():
    made = []

    def make(namespace=None, **kw):
        made.append(Pair(dict(namespace or {}), **kw))
        return made[-1]

    yield make
    for p in made:
        p.close()


def get(p, name):
    return p.grader.request("get", name)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
VALUES = [
    None, True, False, 0, -7, 2**200, -(2**100), 1.5, -0.0, 1e-310, math.inf, -math.inf,
    "", "plain", "déjà vu ✓", (1, "a", None), [1, [2, [3]]], {"a": 1, 2: "b"}, {}, [], (),
    np.float32(1.25), np.float64(-2.5), np.int8(-3), np.uint64(2**64 - 1), np.bool_(True),
    np.complex64(1 - 2j), np.float16(0.5),
    np.array(3.0), np.array(7, dtype=np.int32), np.arange(12.0).reshape(3, 4),
    np.arange(6, dtype=np.float32).reshape(2, 3).T, np.zeros((0, 3)), np.array([True, False]),
    np.array([1 + 2j, 3j], dtype=np.complex128), np.arange(5, dtype=">i4"),
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4)[:, ::2, 1:],
]


def same(a, b) -> bool:
    """Equal *and* of the same type (and dtype, and shape)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype.newbyteorder("=") == b.dtype and np.array_equal(a, b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a == b
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("value", VALUES, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(VALUES)])
def test_plain_values_round_trip_with_their_types(pair, value):
    p = pair({"echo": lambda x: x})
    back = get(p, "echo")(value)
    assert same(value, back), (value, back)


def test_nan_round_trips(pair):
    p = pair({"echo": lambda x: x})
    assert math.isnan(get(p, "echo")(math.nan))
    assert np.isnan(get(p, "echo")(np.array([np.nan]))[0])


def test_a_generator_arrives_as_a_new_generator_in_the_same_state(pair):
    p = pair({"draw": lambda rng: (rng.standard_normal(3), rng)})
    rng = np.random.default_rng(42)
    twin = np.random.default_rng(42)
    drawn, after = get(p, "draw")(rng)
    assert np.array_equal(drawn, twin.standard_normal(3))
    assert type(after) is np.random.Generator and after is not rng
    assert np.array_equal(after.standard_normal(2), twin.standard_normal(2))


def test_received_arrays_are_writable_copies(pair):
    p = pair({"make": lambda: np.arange(4.0)})
    a = get(p, "make")()
    a[0] = 9.0  # would raise on a read-only view of the message
    assert a.flags.owndata or a.base is not None


# ---------------------------------------------------------------------------------------------
# References and proxies
# ---------------------------------------------------------------------------------------------
class Box:
    def __init__(self, items):
        self.items = list(items)
        self.label = "box"

    def total(self, scale=1):
        return scale * sum(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def test_objects_travel_as_references_and_come_back_as_themselves(pair):
    p = pair({"Box": Box, "echo": lambda x: x, "is_box": lambda b: type(b) is Box})
    box = get(p, "Box")([1, 2, 3])
    assert isinstance(box, Proxy)
    assert box.label == "box" and box.total(scale=2) == 12
    assert box[1] == 2 and len(box) == 3 and list(box) == [1, 2, 3]
    assert get(p, "is_box")(box) is True          # the child got its own object back
    mine = object()
    assert get(p, "echo")(mine) is mine           # and so does the grader
    assert get(p, "echo")([mine, {"k": mine}])[1]["k"] is mine


def test_object_arrays_and_odd_objects_are_references(pair):
    p = pair({"objects": lambda: (np.array([None, 1], dtype=object), iter([1]), Box)})
    for value in get(p, "objects")():
        assert isinstance(value, Proxy)


def test_undefined_names_raise_key_error(pair):
    p = pair({})
    with pytest.raises(KeyError):
        get(p, "nothing")


def test_dunder_attributes_are_never_forwarded(pair):
    p = pair({"Box": Box})
    box = get(p, "Box")([1])
    with pytest.raises(AttributeError):
        box.__dict__
    with pytest.raises(RemoteError):
        p.grader.request("getattr", box, "__class__")


def test_nested_callbacks(pair):
    """grader -> child -> grader -> child ... ten levels deep, on one thread per side."""
    p = pair({"bounce": lambda f, n: f(n - 1) + 1})
    bounce = get(p, "bounce")

    def down(n):
        return 0 if n == 0 else bounce(down, n)

    assert down(10) == 10


def test_pass_by_value_result_updates_the_callers_arguments(pair):
    def scribble(a, config, items, untouched, *, kw):
        a[0] = 99.0
        config["t"] = config.get("t", 0) + 1
        items.append("new")
        kw[:] = -1
        return "done"

    p = pair({"scribble": scribble})
    a, config, items, untouched, kw = np.zeros(3), {"lr": 0.1}, [1], np.ones(2), np.ones(2)
    a_id = id(a)
    assert get(p, "scribble")(a, config, items, untouched, kw=kw) == "done"
    assert id(a) == a_id and a.tolist() == [99.0, 0.0, 0.0]
    assert config == {"lr": 0.1, "t": 1} and items == [1, "new"]
    assert untouched.tolist() == [1.0, 1.0] and kw.tolist() == [-1.0, -1.0]


def test_pass_by_value_result_works_for_callbacks_too(pair):
    """The child's array is updated by a grader-side callback that writes into it."""
    p = pair({"run": lambda f: (lambda x: (f(x), x)[1])(np.zeros(2))})

    def fill(x):
        x[:] = 5.0

    assert get(p, "run")(fill).tolist() == [5.0, 5.0]


# ---------------------------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------------------------
class Oops(Exception):
    pass


def raiser(kind):
    def f():
        if kind == "value":
            raise ValueError("bad value")
        if kind == "todo":
            raise NotImplementedError
        if kind == "key":
            raise KeyError("x")
        if kind == "custom":
            raise Oops("mine")
        if kind == "exit":
            raise SystemExit(3)
        raise ValueError("long " * 1000)
    return f


def test_remote_exceptions_keep_their_type_name_and_message(pair):
    p = pair({k: raiser(k) for k in ("value", "todo", "key", "custom", "exit", "long")})
    with pytest.raises(ValueError, match="bad value") as info:
        get(p, "value")()
    assert isinstance(info.value, RemoteError) and type(info.value).__name__ == "ValueError"
    with pytest.raises(NotImplementedError):
        get(p, "todo")()
    with pytest.raises(KeyError) as info:
        get(p, "key")()
    assert str(info.value) == "'x'"
    with pytest.raises(RemoteError) as info:
        get(p, "custom")()
    assert type(info.value).__name__ == "Oops" and str(info.value) == "mine"
    with pytest.raises(RemoteError) as info:
        get(p, "exit")()
    assert type(info.value).__name__ == "SystemExit"
    with pytest.raises(ValueError) as info:
        get(p, "long")()
    assert len(str(info.value)) == wire.MESSAGE_CHARS


def test_the_connection_survives_remote_exceptions(pair):
    p = pair({"value": raiser("value"), "one": lambda: 1})
    with pytest.raises(ValueError):
        get(p, "value")()
    assert get(p, "one")() == 1


# ---------------------------------------------------------------------------------------------
# The hostile side
# ---------------------------------------------------------------------------------------------
def test_the_grader_serves_only_calls_of_what_it_handed_out(pair):
    """The child may call what the grader handed it, and nothing more: no reaching its globals."""
    holder = {}

    def ask(op, *args):  # the child's side making a raw request of the grader
        return holder["child"].request(op, *args)

    p = pair({"ask": ask, "peek": lambda f: f.secret, "call_through": lambda f: f(2),
              "call_own": lambda: holder["child"].request("call", len, [[1]], {})})
    holder["child"] = p.child

    def handed(x):
        return x * 10

    handed.secret = "the grader's secret"
    assert get(p, "call_through")(handed) == 20
    with pytest.raises(PermissionError) as info:
        get(p, "peek")(handed)           # a proxy's attribute: asked of the grader, refused
    assert "grader's secret" not in str(info.value)
    for op, args in (("getattr", (handed, "secret")), ("getitem", (handed, 0)), ("len", (handed,)),
                     ("get", ("handed",)), ("names", ()), ("call", ("os.system", ["true"], {}))):
        with pytest.raises(PermissionError):
            get(p, "ask")(op, *args)
    with pytest.raises(PermissionError):  # a callable of the child's own is not the grader's to run
        get(p, "call_own")()


def test_a_deadline_that_expires(pair):
    p = pair({"slow": lambda: time.sleep(1.0)})
    slow = get(p, "slow")
    p.grader.deadline = time.monotonic() + 0.2
    t = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        slow()
    assert time.monotonic() - t < 0.8
    with pytest.raises(DeadlineExceeded):  # the connection stays broken
        p.grader.request("get", "slow")


def test_the_encoder_refuses_what_the_other_side_would(pair):
    p = pair({"echo": lambda x: x}, limits=Limits(max_depth=8, max_bytes=1 << 16))
    deep = []
    for _ in range(20):
        deep = [deep]
    with pytest.raises(ProtocolError, match="nested"):
        get(p, "echo")(deep)
    with pytest.raises(ProtocolError, match="larger"):
        get(p, "echo")(np.zeros(1 << 14))


def test_a_result_too_large_is_an_error_not_a_broken_connection(pair):
    p = pair({"big": lambda: np.zeros(1 << 14), "one": lambda: 1}, limits=Limits(max_bytes=1 << 16))
    with pytest.raises(RemoteError, match="larger"):
        get(p, "big")()
    assert get(p, "one")() == 1


class Hostile:
    """The grader's connection, and the raw ends a hostile child would write and read."""

    def __init__(self):
        self.g_read, self.c_write = os.pipe()
        self.c_read, self.g_write = os.pipe()
        self.grader = Connection(self.g_read, self.g_write, timeout=2)
        self.writers: list[threading.Thread] = []

    def frame(self, body, blob: bytes = b"") -> bytes:
        text = json.dumps(body).encode() if not isinstance(body, bytes) else body
        return HEADER.pack(MAGIC, len(text), len(blob)) + text + blob

    def answer(self, data: bytes):
        """Send ``data`` as the child's answer to a request, and return what the grader makes of it."""
        writer = threading.Thread(target=self._write, args=(data,), daemon=True)
        writer.start()
        self.writers.append(writer)
        return self.grader.request("get", "x")

    def _write(self, data: bytes):
        try:
            while data:  # a pipe takes 64 KiB at a time: write from a thread, as a child would
                data = data[os.write(self.c_write, data):]
        except OSError:
            pass

    def close(self):
        os.close(self.g_read)        # a writer still blocked on the pipe gets EPIPE and ends...
        for writer in self.writers:
            writer.join(5)           # ...before its descriptor's number can be reused
        for fd in (self.c_write, self.c_read, self.g_write):
            os.close(fd)


@pytest.fixture
def hostile():
    h = Hostile()
    yield h
    h.close()


def ok(value):
    return {"t": "ok", "value": value}


def test_a_well_formed_answer_is_accepted(hostile):
    blob = np.arange(3.0).tobytes()
    got = hostile.answer(hostile.frame(ok(["array", "<f8", [3], 0, False]), blob))
    assert got.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("data", [
    b"garbage bytes, not a message at all......",
    HEADER.pack(b"NOTMAGIC", 2, 0) + b"{}",
    HEADER.pack(MAGIC, 10, 10 << 30),                 # claims 10 GB
    HEADER.pack(MAGIC, 0, 0),
    HEADER.pack(MAGIC, 5, 0) + b"[1,2]",
    HEADER.pack(MAGIC, 3, 0) + b"NaN",
    HEADER.pack(MAGIC, 2, 0) + b"\xff\xfe",
], ids=["garbage", "magic", "10GB", "empty", "not-object", "nan", "not-text"])
def test_broken_frames_are_protocol_errors(hostile, data):
    with pytest.raises(ProtocolError):
        hostile.answer(data)


@pytest.mark.parametrize("value,blob", [
    (["array", "|O8", [1], 0, False], bytes(8)),                      # object dtype
    (["array", "[('a', '<f8')]", [1], 0, False], bytes(8)),           # structured dtype
    (["array", "|V8", [1], 0, False], bytes(8)),
    (["array", ">f8", [1], 0, False], bytes(8)),                      # not native
    (["array", "<c32", [1], 0, False], bytes(32)),                    # itemsize > 16
    (["array", "<f8", [4], 0, False], bytes(8)),                      # longer than the blob
    (["array", "<f8", [1], 8, False], bytes(8)),                      # offset past the blob
    (["array", "<f8", [-1], 0, False], bytes(8)),
    (["array", "<f8", [1.0], 0, False], bytes(8)),
    (["array", "<f8", [2], 0, True], bytes(16)),                      # a scalar with a shape
    (["pickle", "gASVAAAA"], b""),                                    # unknown tag
    (["int", "1e5"], b""), (["int", "٣"], b""), (["int", "9" * 5000], b""),
    (["float", "1.5"], b""), (["float", 1], b""), (["bool", 1], b""),
    (["str", "x" * (10 << 20)], b""),                                 # a string of 10 MB
    (["str", "\ud800"], b""),                                         # not text
    (["dict", [[["float", 1.0], ["none"]]]], b""),                    # a float key
    (["dict", [[["str", "a"]]]], b""),
    (["back", 12345], b""),                                           # none of ours
    (["ref", -1], b""), (["ref", "1"], b""),
    (["rng", ["dict", [[["str", "bit_generator"], ["str", "os.system"]]]]], b""),
    (["rng", ["dict", [[["str", "bit_generator"], ["str", "PCG64"]]]]], b""),
    (["none", 1], b""), ("none", b""), ([], b""),
    (["array", "<b16", [1], 0, False], bytes(16)),                    # the pattern, not NumPy's
    (["array", "|f1", [1], 0, False], bytes(1)),
    (["array", "<f8", [0, 2**62], 0, False], b""),                    # empty, absurd extents
    (["array", "<f8", [0, 2**40], 0, False], b""),
    (["array", "<f8", [0, 10**19], 0, False], b""),                   # past what NumPy allows
], ids=lambda v: str(v)[:40] if not isinstance(v, bytes) else "")
def test_malformed_values_are_protocol_errors(hostile, value, blob):
    with pytest.raises(ProtocolError):
        hostile.answer(hostile.frame(ok(value), blob))


def test_a_json_body_past_its_cap_is_refused_from_the_header(hostile):
    """150 MB of ``[],[],...`` fits the message cap but decodes to gigabytes of lists: the JSON
    body has a cap of its own, checked before a byte of it is read (nothing follows the header
    here: waiting for the body would end at the deadline, not in a ProtocolError)."""
    assert Limits().max_json <= 8 << 20 < Limits().max_bytes
    start = time.monotonic()
    with pytest.raises(ProtocolError, match="JSON body"):
        hostile.answer(HEADER.pack(MAGIC, 150 << 20, 0))
    assert time.monotonic() - start < 1


def test_a_json_body_of_many_empty_lists_is_refused(hostile):
    hostile.grader.limits = Limits(max_json=1 << 12)
    body = b'{"t":"ok","value":["list",[' + b",".join([b"[]"] * 2000) + b"]]}"
    with pytest.raises(ProtocolError, match="JSON body"):
        hostile.answer(hostile.frame(body))


def test_the_json_cap_holds_for_the_sender_too(pair):
    """A request whose JSON is past the cap is refused before it is sent (the connection lives
    on); an answer past it comes back as the callee's error."""
    p = pair({"echo": lambda x: x, "many": lambda: [0] * 5000, "one": lambda: 1},
             limits=Limits(max_json=1 << 14))
    with pytest.raises(ProtocolError, match="JSON body"):
        get(p, "echo")(list(range(5000)))
    with pytest.raises(RemoteError, match="JSON body"):
        get(p, "many")()
    assert get(p, "one")() == 1 and get(p, "echo")(np.zeros(5000)).shape == (5000,)


def test_a_too_deep_structure_is_refused(hostile):
    value = ["none"]
    for _ in range(40):
        value = ["list", [value]]
    with pytest.raises(ProtocolError, match="nested"):
        hostile.answer(hostile.frame(ok(value)))


def test_json_deeper_than_the_parser_goes_is_refused(hostile):
    deeper = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ProtocolError):
        hostile.answer(hostile.frame(deeper.encode()))


def test_too_many_values_are_refused(hostile):
    hostile.grader.limits = Limits(max_items=1000)
    many = ["list", [["none"]] * 1000]
    with pytest.raises(ProtocolError, match="values"):
        hostile.answer(hostile.frame(ok(many)))


@pytest.mark.parametrize("body", [
    {"t": "ok"}, {"t": "ok", "value": ["none"], "extra": 1}, {"t": "shout", "value": ["none"]},
    {"t": "err", "type": "X", "base": "", "message": 5},
    {"t": "err", "type": "X" * 500, "base": "", "message": ""},
    {"t": "note", "text": "x" * 5000},
])
def test_malformed_messages_are_protocol_errors(hostile, body):
    with pytest.raises(ProtocolError):
        hostile.answer(hostile.frame(body))


def test_a_bad_call_result_breaks_the_connection(hostile):
    """A child that answers a call with results that do not match the arguments."""
    target = Proxy(hostile.grader, 1)
    os.write(hostile.c_write, hostile.frame({"t": "ok", "value": ["none"], "back": ["int", "3"]}))
    with pytest.raises(ProtocolError):
        target(np.zeros(2))
    assert isinstance(hostile.grader.broken, ProtocolError)


def test_silence_hits_the_read_deadline(hostile):
    hostile.grader.timeout = 0.2
    with pytest.raises(DeadlineExceeded):
        hostile.grader.request("get", "x")


def test_a_trickle_does_not_extend_the_deadline(hostile):
    """Bytes arriving slowly still have to make a whole message before the deadline."""
    hostile.grader.timeout = 0.5
    data = hostile.frame(ok(["none"]))

    def trickle():
        try:
            for byte in data[:-1]:
                os.write(hostile.c_write, bytes([byte]))
                time.sleep(0.05)
        except OSError:  # the grader's end is closed
            pass

    hostile.writers.append(threading.Thread(target=trickle, daemon=True))
    hostile.writers[-1].start()
    with pytest.raises(DeadlineExceeded):
        hostile.grader.request("get", "x")


def test_a_closed_pipe_is_connection_lost(hostile):
    os.close(hostile.c_write)
    hostile.c_write = os.open(os.devnull, os.O_WRONLY)  # so that close() has something to close
    with pytest.raises(ConnectionLost):
        hostile.grader.request("get", "x")


def test_a_note_the_listener_refuses_breaks_the_connection(hostile):
    def refuse(text):
        raise ProtocolError(f"unexpected note {text!r}")

    hostile.grader.on_note = refuse
    with pytest.raises(ProtocolError, match="unexpected note"):
        hostile.answer(hostile.frame({"t": "note", "text": "start cell x"}))
    assert isinstance(hostile.grader.broken, ProtocolError)
