"""What the onevit serve tests and benchmarks share (standard library + numpy only).

- ServeProcess: `onevit serve` on free ports (--http-port 0 --grpc-port 0), started
  until its "ready:" log line, its log collected, stopped by a signal.
- Open Inference Protocol request bodies: JSON tensors, binary tensor data
  (Inference-Header-Content-Length), BYTES images; and the response's outputs.
- http_request: one request on a fresh or given connection (http.client).
- raw_exchange: bytes on a socket, for what http.client will not send.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def model_name_of(path: str) -> str:
    """The name onevit serve gives a model file without --name: its stem."""
    return os.path.splitext(os.path.basename(path))[0]


class Checks:
    """A test's checks: failures are printed as they happen and summed up by report()."""

    def __init__(self):
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"  FAIL {what}", flush=True)
        return ok

    def report(self) -> int:
        """PASS or FAIL with every failure; the exit status."""
        if self.failures:
            print(f"FAIL: {len(self.failures)} of {self.passed + len(self.failures)} checks")
            for failure in self.failures:
                print(f"  {failure}")
            return 1
        print(f"PASS: {self.passed} checks")
        return 0


class TestModel:
    """A model the serve tests run: its file, input shape (C, H, W), classes and sample images."""

    def __init__(self, name: str, path: str, shape: tuple, classes: int, images: list[str]):
        self.name, self.path, self.shape, self.classes, self.images = name, path, shape, classes, images


def test_models(data: str | None, tmp: str) -> list[TestModel]:
    """The bundled digits model, and DeiT-tiny converted into tmp when `data` (../shared/data) has it
    (data None: the digits model alone)."""
    samples = sorted(os.path.join(REPO, "weights", "samples", f)
                     for f in os.listdir(os.path.join(REPO, "weights", "samples")) if f.endswith(".png"))
    models = [TestModel("digits_vit", os.path.join(REPO, "weights", "digits_vit.ovit"), (1, 32, 32), 10, samples)]
    if data is None:
        return models
    checkpoint = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
    if not os.path.isfile(checkpoint):
        print(f"(no {checkpoint}: DeiT-tiny's part skipped)")
        return models
    deit = os.path.join(tmp, "deit_tiny.ovit")
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "weights", "convert.py"), checkpoint, "--arch",
                    "deit_tiny_patch16_224", "--labels", os.path.join(data, "labels", "imagenet_classes.txt"),
                    "-o", deit], check=True, stdout=subprocess.DEVNULL)
    photos = sorted(os.path.join(data, "images", f) for f in os.listdir(os.path.join(data, "images"))
                    if f.endswith(".jpg"))
    models.append(TestModel("deit_tiny", deit, (3, 224, 224), 1000, photos))
    return models


def reference_logits(onevit: str, model: str, x: np.ndarray, tmp: str, precision: str = "") -> np.ndarray:
    """`onevit infer`'s logits for x (written to tmp)."""
    source, result = os.path.join(tmp, "reference_in.npy"), os.path.join(tmp, "reference_out.npy")
    np.save(source, x)
    subprocess.run([onevit, "infer", "--model", model, "--input", source, "--output", result,
                    *(["--precision", precision] if precision else [])], check=True)
    return np.load(result)


def reference_topk(onevit: str, model: str, images: list[str], top: int) -> dict:
    """`onevit classify --json --top top`: {image path: topk list}."""
    out = subprocess.run([onevit, "classify", "--model", model, "--top", str(top), "--json", *images], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return {json.loads(line)["image"]: json.loads(line)["topk"] for line in out.splitlines() if line.strip()}


def same_topk(strings, topk) -> bool:
    """Classification strings ("prob:index:label", str or bytes) equal to a `classify --json` topk."""
    mine = [(s.decode() if isinstance(s, bytes) else s).split(":", 2) for s in strings]
    return len(mine) == len(topk) and all(
        float(p) == t["prob"] and int(i) == t["index"] and label == t["label"] for (p, i, label), t in zip(mine, topk))


class GoodClient:
    """Sends one good request again and again on a kept-alive connection, each answer
    checked against the expected logits; reconnects after a failure."""

    def __init__(self, port: int, model: str, x: np.ndarray, expected: np.ndarray):
        self.port, self.path = port, f"/v2/models/{model}/infer"
        self.body, header = binary_tensor_body(x)
        self.headers = {"Inference-Header-Content-Length": str(header)}
        self.expected = expected
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self) -> str:
        """"" if the answer was right, else what was wrong."""
        try:
            self.conn.request("POST", self.path, self.body, self.headers)
            reply = self.conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                return f"status {reply.status}: {data[:120]!r}"
            logits = infer_outputs({h.lower(): v for h, v in reply.getheaders()}, data)["logits"]
            return "" if np.array_equal(logits, self.expected) else "wrong logits"
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return f"{type(e).__name__}: {e}"

    def close(self) -> None:
        self.conn.close()


class ServeProcess:
    """`onevit serve --model MODEL --http-port 0 --grpc-port 0 ARGS...` until ready."""

    def __init__(self, onevit: str, model: str, *args: str, ready_timeout: float = 300.0, env=None):
        self.cmd = [onevit, "serve", "--model", model, "--http-port", "0", "--grpc-port", "0", *args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.log: list[str] = []
        self._lines = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        listening = self.wait_for_line(r"listening: HTTP on (\S+):(\d+), gRPC on (\S+):(\d+)", ready_timeout)
        self.host, self.http_port, self.grpc_port = listening.group(1), int(listening.group(2)), int(listening.group(4))
        self.wait_for_line(r"ready: ", ready_timeout)

    def _read_log(self):
        for line in self.proc.stderr:
            with self._lines:
                self.log.append(line.rstrip("\n"))
                self._lines.notify_all()
        with self._lines:
            self._lines.notify_all()

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0):
        """The first log line (from index start) matching pattern; RuntimeError on timeout or exit."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._lines:
            while True:
                for line in self.log[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"onevit serve exited ({self.proc.returncode}) before '{pattern}':\n"
                                       + "\n".join(self.log[-20:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no '{pattern}' from onevit serve in {timeout} s:\n" + "\n".join(self.log[-20:]))
                self._lines.wait(min(left, 0.5))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 120.0) -> int:
        """Sends sig and waits for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"onevit serve did not exit within {timeout} s of signal {sig}")
        finally:
            self._reader.join(5)

    def check_clean_exit(self, c: "Checks") -> bool:
        """SIGTERM, then checks the exit status is 0; a failure shows the status and the log's last lines."""
        status = self.stop()
        tail = "\n    ".join(self.log[-15:])
        return c.check(status == 0, f"exit status 0 after SIGTERM, got {status}; the server's last lines:\n    {tail}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


def json_tensor_body(x: np.ndarray, *, binary_output=False, classification=0, output="logits",
                     nested=False, request_id="") -> bytes:
    """An inference request with pixel_values as JSON numbers."""
    data = x.tolist() if nested else [float(v) for v in x.reshape(-1)]
    request = {"inputs": [{"name": "pixel_values", "datatype": "FP32", "shape": list(x.shape), "data": data}]}
    if request_id:
        request["id"] = request_id
    if output is not None:  # None: no outputs named, the server sends them all
        request["outputs"] = [output_spec(output, binary_output, classification)]
    return json.dumps(request).encode()


def output_spec(name="logits", binary=False, classification=0) -> dict:
    parameters = {"binary_data": binary}
    if classification:
        parameters["classification"] = classification
    return {"name": name, "parameters": parameters}


def binary_tensor_body(x: np.ndarray, *, binary_output=True, classification=0, output="logits",
                       request_id="") -> tuple[bytes, int]:
    """pixel_values as binary tensor data: (body, Inference-Header-Content-Length)."""
    raw = np.ascontiguousarray(x, dtype="<f4").tobytes()
    request = {"inputs": [{"name": "pixel_values", "datatype": "FP32", "shape": list(x.shape),
                           "parameters": {"binary_data_size": len(raw)}}]}
    if output is not None:  # None: no outputs named, the server sends them all
        request["outputs"] = [output_spec(output, binary_output, classification)]
    if request_id:
        request["id"] = request_id
    header = json.dumps(request).encode()
    return header + raw, len(header)


def bytes_elements(items: list[bytes]) -> bytes:
    """BYTES tensor data: each element a 4-byte little-endian length and its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def image_body(files: list[bytes], *, classification=0, binary_output=True, output="logits") -> tuple[bytes, int]:
    """The image input (BYTES, encoded files) as binary tensor data."""
    raw = bytes_elements(files)
    request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(files)],
                           "parameters": {"binary_data_size": len(raw)}}],
               "outputs": [output_spec(output, binary_output, classification)]}
    header = json.dumps(request).encode()
    return header + raw, len(header)


def parse_bytes_elements(raw: bytes) -> list[bytes]:
    items, at = [], 0
    while at < len(raw):
        (length,) = struct.unpack_from("<I", raw, at)
        items.append(raw[at + 4:at + 4 + length])
        at += 4 + length
    return items


def infer_outputs(headers: dict, body: bytes) -> dict:
    """A 200 inference response -> {output name: numpy array (FP32) or list of str (BYTES)}."""
    header_length = headers.get("inference-header-content-length")
    document = json.loads(body[:int(header_length)] if header_length else body)
    binary = body[int(header_length):] if header_length else b""
    outputs, at = {}, 0
    for output in document["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw = binary[at:at + size]
            at += size
            if output["datatype"] == "BYTES":
                outputs[output["name"]] = [s.decode() for s in parse_bytes_elements(raw)]
            else:
                outputs[output["name"]] = np.frombuffer(raw, dtype="<f4").reshape(output["shape"])
        elif output["datatype"] == "BYTES":
            outputs[output["name"]] = list(output["data"])
        else:
            outputs[output["name"]] = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    return outputs


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def error(self) -> str:
        try:
            return str(self.json().get("error"))
        except ValueError:
            return f"(not JSON: {self.body[:80]!r})"


def http_request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 connection: http.client.HTTPConnection | None = None, timeout: float = 60.0) -> Response:
    """One request; on `connection` if given (kept open), else on a new one (closed)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        data = reply.read()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, data)
    finally:
        if connection is None:
            conn.close()


def infer_request(port: int, model: str, body: bytes, header_length: int | None = None, *,
                  connection=None, headers: dict | None = None) -> Response:
    all_headers = {"Content-Type": "application/octet-stream" if header_length is not None else "application/json"}
    if header_length is not None:
        all_headers["Inference-Header-Content-Length"] = str(header_length)
    all_headers.update(headers or {})
    return http_request(port, "POST", f"/v2/models/{model}/infer", body, all_headers, connection)


def raw_exchange(port: int, data: bytes, *, close_after_send=False, timeout: float = 30.0) -> bytes:
    """Sends data on a new connection and returns all it gets back until the server closes
    (or b"" if close_after_send: the client hangs up at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at the header (the body left unread) and closed while we sent: read its answer
        if close_after_send:
            return b""
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed already
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def raw_infer(model: str, body: bytes, header_length: int | None = None, extra: str = "",
              content_length: int | None = None) -> bytes:
    """A whole inference request as bytes on the wire, asking the server to close after it."""
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\n")
    if header_length is not None:
        head += f"Inference-Header-Content-Length: {header_length}\r\n"
    return (head + extra + "\r\n").encode() + body


def error_of(raw: bytes) -> str:
    """The "error" of the JSON body of a raw HTTP response ("" if none)."""
    _, _, body = raw.partition(b"\r\n\r\n")
    try:
        return str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return ""


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def png_blank(width: int, height: int) -> bytes:
    """A black 8-bit greyscale PNG of width x height: a few bytes a row once compressed, slow to decode and resize."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte 0, then the row's pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class Hostile:
    """A hostile request: its bytes, and what the server must do.

    status: the status it must answer with (its JSON error containing `words`), or None
    when the client hangs up right after sending (nothing to answer; the server must cope)."""

    def __init__(self, what: str, data: bytes, status: int | None, words: str = ""):
        self.what, self.data, self.status, self.words = what, data, status, words

    def send(self, port: int) -> str:
        """Sends it; "" if the server did as it must, else what went wrong."""
        if self.status is None:
            raw_exchange(port, self.data, close_after_send=True)
            return ""
        raw = raw_exchange(port, self.data)
        got, error = status_of(raw), error_of(raw)
        if got != self.status or self.words not in error:
            return f"{self.what}: want {self.status} '{self.words}', got {got} '{error[:120]}'"
        return ""


def hostile_requests(model: str, shape: tuple, max_batch: int, max_body_bytes: int) -> list[Hostile]:
    """Malformed, oversized, truncated and wrong requests for a server of `model` (input shape C, H, W)
    started with --max-batch max_batch --max-body-bytes max_body_bytes --max-header-bytes 8192."""
    pixels = int(np.prod(shape))
    good_tensor = {"name": "pixel_values", "datatype": "FP32", "shape": [1, *shape], "data": [0.5] * pixels}

    def doc(**changes) -> bytes:
        tensor = dict(good_tensor)
        tensor.update(changes)
        return json.dumps({"inputs": [tensor]}).encode()

    x = np.zeros((1,) + tuple(shape), np.float32)
    good_body, good_header = binary_tensor_body(x)
    nan_body, nan_header = binary_tensor_body(np.full((1,) + tuple(shape), np.nan, dtype=np.float32))
    bad_bytes = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                        "parameters": {"binary_data_size": 10}}]}).encode()
    over = max_batch + 1
    cases = [
        ("malformed JSON", raw_infer(model, b'{"inputs": ['), 400, "malformed JSON"),
        ("a JSON array", raw_infer(model, b"[]"), 400, "JSON object"),
        ("JSON nested 100,000 deep", raw_infer(model, b"[" * 100000 + b"]" * 100000), 400, "nested deeper"),
        ("no inputs", raw_infer(model, b'{"outputs": []}'), 400, "inputs"),
        ("two inputs", raw_infer(model, json.dumps({"inputs": [good_tensor, good_tensor]}).encode()), 400,
         "exactly one"),
        ("an unknown input", raw_infer(model, doc(name="pixels")), 400, "unknown input"),
        ("a wrong datatype", raw_infer(model, doc(datatype="INT32")), 400, "FP32"),
        ("a wrong shape", raw_infer(model, doc(shape=[1, 3, 7, 7])), 400, "shape"),
        ("batch 0", raw_infer(model, doc(shape=[0, *shape], data=[])), 400, "batch 0"),
        ("a batch over --max-batch", raw_infer(model, doc(shape=[over, *shape], data=[0.0] * (over * pixels))),
         400, "--max-batch"),
        ("too few values", raw_infer(model, doc(data=[1.0, 2.0])), 400, "values"),
        ("strings as pixels", raw_infer(model, doc(data=["a"] * pixels)), 400, "strings"),
        ("an object in data", raw_infer(model, doc(data=[{"b64": "AAAA"}])), 400, "object"),
        ("NaN pixels", raw_infer(model, nan_body, nan_header), 400, "finite"),
        ("a header length past the body", raw_infer(model, good_body, len(good_body) + 10), 400,
         "Inference-Header-Content-Length"),
        ("a header length that is not a number", raw_infer(model, good_body, None,
                                                           "Inference-Header-Content-Length: 12abc\r\n"), 400,
         "not a byte count"),
        ("a binary_data_size past the body", raw_infer(model, good_body[:good_header + 100], good_header), 400,
         "binary"),
        ("bytes after the tensors", raw_infer(model, good_body + b"xx", good_header), 400, "after"),
        ("a BYTES length past the end", raw_infer(model, bad_bytes + struct.pack("<I", 1000) + b"abcdef",
                                                  len(bad_bytes)), 400, "claims"),
        ("an undecodable image", raw_infer(model, *image_body([b"not an image at all"])), 400, "image 0 of 1"),
        ("a 60000 x 60000 PNG", raw_infer(model, *image_body([png_claiming(60000, 60000)])), 400, "image 0 of 1"),
        ("an unknown output", raw_infer(model, json_tensor_body(x, output="probs")), 400, "unknown output"),
        ("classification 0", raw_infer(model, json.dumps({"inputs": [good_tensor], "outputs": [
            {"name": "logits", "parameters": {"classification": 0}}]}).encode()), 400, "classification"),
        ("an unknown model", raw_infer("no_such_model", good_body, good_header), 404, "unknown model"),
        ("garbage instead of HTTP", b"\x00\x01GARBAGE\r\n\r\n", 400, "malformed HTTP"),
        ("a body over --max-body-bytes, refused before it is sent",
         raw_infer(model, b"", content_length=max_body_bytes + 1), 413, "--max-body-bytes"),
        ("a header over --max-header-bytes", raw_infer(model, b"{}", None, "X-Pad: " + "a" * 20000 + "\r\n"), 431,
         "header"),
        ("gzip content encoding", raw_infer(model, b"{}", None, "Content-Encoding: gzip\r\n"), 415, "gzip"),
        ("GET on infer", f"GET /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 405, "POST"),
        ("an unknown path", b"GET /v3/whatever HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no endpoint"),
        ("a body cut short", raw_infer(model, b'{"inputs": [', content_length=5000), None),
        ("half a header", b"POST /v2/models/x/infer HTTP/1.1\r\nContent-Le", None),
        ("a request whose answer nobody reads", raw_infer(model, good_body, good_header), None),
    ]
    return [Hostile(*case) for case in cases]


def trickle(port: int, model: str, interval: float = 0.25, give_up: float = 60.0) -> bool:
    """A client sending a valid request a byte every `interval` s: whether the server drops it
    (closes the connection without an answer) before it is all sent."""
    data = raw_infer(model, b" " * 100)
    with socket.create_connection(("127.0.0.1", port), timeout=give_up) as s:
        s.settimeout(interval)
        started = time.monotonic()
        for byte in data:
            if time.monotonic() - started > give_up:
                return False
            try:
                s.sendall(bytes([byte]))
            except OSError:
                return True  # reset
            try:
                return s.recv(1) == b""  # closed: dropped; any answer: not
            except socket.timeout:
                continue
            except OSError:
                return True
    return False


def status_of(raw: bytes) -> int | None:
    """The status code of the first HTTP response in raw bytes, or None."""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(match.group(1)) if match else None


def metric_values(text: str) -> dict:
    """Prometheus text -> {'name{labels}': value} (label order as the server writes them)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def log(message: str) -> None:
    print(message, flush=True)
    sys.stdout.flush()
