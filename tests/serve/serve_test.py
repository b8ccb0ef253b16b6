#!/usr/bin/python3
"""onevit serve over HTTP/REST, driven by Python's own http.client and raw sockets
(no PyPI; Triton's client drives HTTP and gRPC in triton_client_test.py).

    tests/serve/serve_test.py [--onevit build/apps/onevit] [--data ../shared/data] [--digits-only] [--keep]

1. The protocol, on the bundled digits model and (with ../shared/data) DeiT-tiny:
   health, metadata, tensor inference in JSON (flat and nested) and in the binary
   tensor data extension, logits bit-identical to `onevit infer`; image inference
   (BYTES files) with the classification extension equal to `onevit classify --json`;
   a model without a classifier serves `embedding`; --name replaces the file's stem.
2. 32 clients at once with mixed batch sizes each get exactly their own logits.
3. Hostile clients: malformed, oversized and truncated bodies, wrong shapes and
   types, trickled bytes, disconnects mid-request: each answered or dropped as
   specified, and a good request succeeds after each.
4. An API key, the connection limit, the queue limit and the image slots (503 at once),
   and the metrics.
5. SIGTERM under load: every request received is answered, the exit status is 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import argument_parser, exit_status, resolve_onevit, scratch_dir  # noqa: E402
from serve_harness import (Checks, ServeProcess, TestModel, binary_tensor_body, hostile_requests, http_request, image_body,  # noqa: E402
                           infer_outputs, infer_request, json_tensor_body, metric_values, png_blank, raw_exchange,
                           raw_infer, reference_logits, reference_topk, same_topk, status_of,
                           test_models, trickle)


def good_request(server: ServeProcess, model: TestModel, x: np.ndarray, expected: np.ndarray) -> bool:
    body, header = binary_tensor_body(x)
    reply = infer_request(server.http_port, model.name, body, header)
    return reply.status == 200 and np.array_equal(infer_outputs(reply.headers, reply.body)["logits"], expected)


# --- 1. the protocol ---------------------------------------------------------------------------

def protocol(onevit: str, model: TestModel, tmp: str, c: Checks) -> None:
    print(f"protocol: {model.name}", flush=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) + model.shape).astype(np.float32)
    expected = reference_logits(onevit, model.path, x, tmp)
    with ServeProcess(onevit, model.path, "--max-batch", "4") as server:
        port = server.http_port
        c.check(http_request(port, "GET", "/v2/health/live").status == 200, "live: 200")
        c.check(http_request(port, "GET", "/v2/health/ready").status == 200, "ready: 200")
        meta = http_request(port, "GET", "/v2").json()
        c.check(meta.get("name") == "onevit" and {"binary_tensor_data", "classification"} <= set(meta["extensions"]),
                f"server metadata: {meta}")
        model_meta = http_request(port, "GET", f"/v2/models/{model.name}").json()
        inputs = {t["name"]: (t["datatype"], t["shape"]) for t in model_meta["inputs"]}
        c.check(inputs == {"pixel_values": ("FP32", [-1, *model.shape]), "image": ("BYTES", [-1])},
                f"model metadata inputs: {model_meta['inputs']}")
        c.check(model_meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, model.classes]}],
                f"model metadata outputs: {model_meta['outputs']}")
        c.check(http_request(port, "GET", f"/v2/models/{model.name}/ready").status == 200, "model ready: 200")
        c.check(http_request(port, "GET", f"/v2/models/{model.name}/versions/1").status == 200, "version 1: 200")
        c.check(http_request(port, "GET", f"/v2/models/{model.name}/versions/2").status == 404, "version 2: 404")
        c.check(http_request(port, "GET", "/v2/models/nonexistent").status == 404, "unknown model: 404")

        for how, (body, header) in {
            "JSON in, JSON out": (json_tensor_body(x, request_id="req-7"), None),
            "nested JSON in, binary out": (json_tensor_body(x, nested=True, binary_output=True), None),
            "binary in, JSON out": binary_tensor_body(x, binary_output=False),
            "binary in, binary out": binary_tensor_body(x),
        }.items():
            reply = infer_request(port, model.name, body, header)
            if not c.check(reply.status == 200, f"{model.name} {how}: {reply.status} {reply.error()}"):
                continue
            logits = infer_outputs(reply.headers, reply.body)["logits"]
            c.check(np.array_equal(logits, expected),
                    f"{model.name} {how}: logits differ from onevit infer by {np.abs(logits - expected).max()}")
            if how.startswith("JSON in"):
                c.check(reply.json().get("id") == "req-7", "the request id is echoed")
        body, header = binary_tensor_body(x)
        reply = http_request(port, "POST", f"/v2/models/{model.name}/versions/1/infer", body,
                             {"Inference-Header-Content-Length": str(header)})
        c.check(reply.status == 200, f"infer under /versions/1: {reply.status}")

        images = model.images[:3]
        files = [open(path, "rb").read() for path in images]
        top = 5
        ref = reference_topk(onevit, model.path, images, top)
        body, header = image_body(files, classification=top)
        reply = infer_request(port, model.name, body, header)
        if c.check(reply.status == 200, f"{model.name} image infer: {reply.status} {reply.error()}"):
            got = infer_outputs(reply.headers, reply.body)["logits"]
            for i, path in enumerate(images):
                mine = got[i * top:(i + 1) * top]
                c.check(same_topk(mine, ref[path]),
                        f"{model.name} {os.path.basename(path)}: top-{top} {mine} != classify's {ref[path]}")
        body, header = image_body(files[:1])
        reply = infer_request(port, model.name, body, header)
        if c.check(reply.status == 200, f"{model.name} image infer, logits: {reply.status} {reply.error()}"):
            logits = infer_outputs(reply.headers, reply.body)["logits"]
            c.check(logits.shape == (1, model.classes) and int(np.argmax(logits)) == ref[images[0]][0]["index"],
                    f"{model.name} image logits: argmax {int(np.argmax(logits))}, classify's top-1 "
                    f"{ref[images[0]][0]['index']}")
        server.check_clean_exit(c)


def headless_and_name(onevit: str, tmp: str, c: Checks) -> None:
    """A model without a classifier serves its output as `embedding`, FP32 [-1, dim], = onevit infer's,
    and refuses the classification extension; --name NAME replaces the file stem in every path."""
    print("a headless model, --name", flush=True)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
    from headless_model import DIM, GRID, write_headless_vit
    path = os.path.join(tmp, "headless.ovit")
    write_headless_vit(path, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights",
                                          "convert.py"))
    shape = (3, GRID * 16, GRID * 16)
    x = np.random.default_rng(7).standard_normal((2,) + shape).astype(np.float32)
    expected = reference_logits(onevit, path, x, tmp)
    with ServeProcess(onevit, path, "--max-batch", "2", "--name", "vit-embedder") as server:
        port = server.http_port
        c.check(http_request(port, "GET", "/v2/models/headless").status == 404, "--name: the file stem is unknown")
        meta = http_request(port, "GET", "/v2/models/vit-embedder")
        if c.check(meta.status == 200, f"--name: metadata under the given name: {meta.status}"):
            c.check(meta.json()["name"] == "vit-embedder", f"--name: metadata name {meta.json()['name']}")
            c.check(meta.json()["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, DIM]}],
                    f"headless metadata outputs: {meta.json()['outputs']}")
        for how, (body, header) in {"binary": binary_tensor_body(x, output="embedding"),
                                    "JSON": (json_tensor_body(x, output="embedding"), None),
                                    "no outputs named": binary_tensor_body(x, output=None)}.items():
            reply = infer_request(port, "vit-embedder", body, header)
            if c.check(reply.status == 200, f"headless {how}: {reply.status} {reply.error()}"):
                got = infer_outputs(reply.headers, reply.body)
                c.check(list(got) == ["embedding"] and np.array_equal(got["embedding"], expected),
                        f"headless {how}: the embedding differs from onevit infer's")
        body, header = binary_tensor_body(x, output="logits")
        reply = infer_request(port, "vit-embedder", body, header)
        c.check(reply.status == 400 and "embedding" in reply.error(), f"headless, 'logits' asked: {reply.status}")
        body, header = binary_tensor_body(x, output="embedding", classification=3)
        reply = infer_request(port, "vit-embedder", body, header)
        c.check(reply.status == 400 and "classifier" in reply.error(),
                f"headless, classification asked: {reply.status} {reply.error()}")
        server.check_clean_exit(c)


# --- 2. concurrency ----------------------------------------------------------------------------

def concurrency(onevit: str, model: TestModel, tmp: str, c: Checks, clients: int = 32, requests: int = 6) -> None:
    print(f"concurrency: {clients} clients x {requests} requests, batch 1-4", flush=True)
    rng = np.random.default_rng(2)
    batches = [[int(rng.integers(1, 5)) for _ in range(requests)] for _ in range(clients)]
    inputs = [[rng.standard_normal((b,) + model.shape).astype(np.float32) for b in row] for row in batches]
    everything = np.concatenate([x for row in inputs for x in row])
    expected_all = reference_logits(onevit, model.path, everything, tmp)
    expected, at = [], 0
    for row in inputs:
        expected.append([])
        for x in row:
            expected[-1].append(expected_all[at:at + len(x)])
            at += len(x)
    wrong: list[str] = []

    with ServeProcess(onevit, model.path, "--max-batch", "4") as server:
        def client(k: int):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
            try:
                for i, x in enumerate(inputs[k]):
                    body, header = binary_tensor_body(x, request_id=f"{k}-{i}")
                    reply = infer_request(server.http_port, model.name, body, header, connection=conn)
                    if reply.status != 200:
                        wrong.append(f"client {k} request {i}: {reply.status} {reply.error()}")
                        continue
                    logits = infer_outputs(reply.headers, reply.body)["logits"]
                    if json.loads(reply.body[:int(reply.headers["inference-header-content-length"])])["id"] != f"{k}-{i}":
                        wrong.append(f"client {k} request {i}: another request's id")
                    if not np.array_equal(logits, expected[k][i]):
                        wrong.append(f"client {k} request {i} (batch {len(x)}): not its own logits")
            except Exception as e:  # noqa: BLE001 - any failure of a client is a test failure
                wrong.append(f"client {k}: {type(e).__name__}: {e}")
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        batches_run = metric_values(http_request(server.http_port, "GET", "/metrics").body.decode())
        c.check(not wrong, f"{len(wrong)} wrong answers: {wrong[:5]}")
        server.check_clean_exit(c)
    runs = batches_run.get("onevit_batch_size_count", 0)
    print(f"  {clients * requests} requests ({everything.shape[0]} images) in {runs:.0f} model runs", flush=True)


# --- 3. hostile clients ------------------------------------------------------------------------

def infer_head(model: str, length: int, extra: str = "") -> bytes:
    return (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def hostile(onevit: str, model: TestModel, tmp: str, c: Checks) -> None:
    print("hostile clients", flush=True)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2,) + model.shape).astype(np.float32)
    expected = reference_logits(onevit, model.path, x, tmp)
    with ServeProcess(onevit, model.path, "--max-batch", "4", "--request-timeout-s", "2",
                      "--max-body-bytes", "1000000", "--max-header-bytes", "8192") as server:
        port = server.http_port

        def still_serving(after: str) -> None:
            c.check(good_request(server, model, x[:1], expected[:1]), f"a good request after {after}")

        cases = hostile_requests(model.name, model.shape, 4, 1000000)
        for case in cases:
            problem = case.send(port)
            c.check(not problem, problem)
            still_serving(case.what)

        # A chunked body and Expect: 100-continue are HTTP/1.1 and must work.
        body = json_tensor_body(x[:1])
        chunked = infer_head(model.name, 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked") + \
            f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        c.check(status_of(raw_exchange(port, chunked)) == 200, "a chunked request body: 200")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(infer_head(model.name, len(body), "Expect: 100-continue\r\nConnection: close\r\n"))
            interim = s.recv(4096)
            s.sendall(body)
            rest = b""
            while chunk := s.recv(65536):
                rest += chunk
            c.check(status_of(interim) == 100 and status_of(rest) == 200,
                    f"Expect: 100-continue: {status_of(interim)} then {status_of(rest)}")

        # Bytes trickled slower than --request-timeout-s 2: dropped, others served meanwhile.
        result = []
        trickler = threading.Thread(target=lambda: result.append(trickle(port, model.name)))
        trickler.start()
        time.sleep(0.5)
        c.check(good_request(server, model, x[:1], expected[:1]), "a good request is served while a client trickles")
        trickler.join()
        c.check(result == [True], "a client trickling bytes is dropped at --request-timeout-s")
        still_serving("a trickling client")
        c.check(server.alive(), "the server is still running")
        bad_lines = [line for line in server.log if line.startswith("onevit serve: http 4")]
        answered = [case for case in cases if case.status is not None]
        c.check(len(bad_lines) >= len(answered), f"each refused request logged: {len(bad_lines)} lines")
        server.check_clean_exit(c)


# --- 4. API key, limits, metrics ---------------------------------------------------------------

def key_and_limits(onevit: str, model: TestModel, tmp: str, c: Checks) -> None:
    print("API key, connection limit, metrics", flush=True)
    key_file = os.path.join(tmp, "key")
    with open(key_file, "w") as f:
        f.write("s3cret-key\n")
    x = np.random.default_rng(4).standard_normal((1,) + model.shape).astype(np.float32)
    body, header = binary_tensor_body(x)
    good = {"Authorization": "Bearer s3cret-key"}
    with ServeProcess(onevit, model.path, "--api-key-file", key_file, "--max-connections", "4") as server:
        port = server.http_port
        c.check(http_request(port, "GET", "/v2/health/live").status == 200, "live needs no key")
        for path in ["/v2/health/ready", "/v2", f"/v2/models/{model.name}", "/metrics"]:
            none = http_request(port, "GET", path)
            c.check(none.status == 401 and none.headers.get("www-authenticate") == "Bearer",
                    f"{path} without a key: {none.status}")
            c.check(http_request(port, "GET", path, headers={"Authorization": "Bearer s3cret-kez"}).status == 401,
                    f"{path} with a wrong key: 401")
            c.check(http_request(port, "GET", path, headers={"Authorization": "Bearer s3cret-key-longer"}).status
                    == 401, f"{path} with a longer key: 401")
            c.check(http_request(port, "GET", path, headers=good).status == 200, f"{path} with the key: 200")
        c.check(infer_request(port, model.name, body, header).status == 401, "infer without a key: 401")
        c.check(infer_request(port, model.name, body, header, headers=good).status == 200, "infer with the key: 200")

        metrics = metric_values(http_request(port, "GET", "/metrics", headers=good).body.decode())
        http_infer = '{protocol="http",endpoint="infer"}'
        c.check(metrics.get("onevit_requests_total" + http_infer) == 2 and
                metrics.get("onevit_request_failures_total" + http_infer) == 1,
                f"infer counted: {metrics.get('onevit_requests_total' + http_infer)} requests, "
                f"{metrics.get('onevit_request_failures_total' + http_infer)} failures (want 2, 1)")
        c.check(metrics.get('onevit_requests_total{protocol="http",endpoint="live"}') == 1, "live counted once")
        c.check(metrics.get('onevit_request_duration_seconds_count{protocol="http"}') == 1,
                "the latency of the one infer request that got past the key")
        for name in ["onevit_queue_duration_seconds_count", "onevit_batch_size_count", "onevit_images_total",
                     "onevit_images_per_second", "onevit_inflight_requests", "onevit_queued_requests",
                     "onevit_queued_images", 'onevit_infer_received_total{protocol="grpc"}']:
            c.check(name in metrics, f"metric {name}")
        c.check(metrics.get("onevit_images_total") == 1 and metrics.get("onevit_batch_size_count") == 1 and
                metrics.get("onevit_compute_duration_seconds_count") == 1, "one image in one batch, one model run")
        c.check(metrics.get("onevit_decode_duration_seconds_count") == 0, "no image input, nothing decoded")

        # --max-connections 4: four kept-alive connections that were answered, then a fifth is refused.
        import http.client
        idle, tries = [], 0
        while len(idle) < 4 and tries < 100:  # one the server has not yet seen close may still count: retry
            tries += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if http_request(port, "GET", "/v2/health/live", connection=conn).status == 200:
                idle.append(conn)
            else:
                conn.close()
        c.check(status_of(raw_exchange(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")) == 503,
                "a connection over --max-connections: 503")
        for s in idle:
            s.close()
        deadline, ok = time.monotonic() + 10, False
        while not ok and time.monotonic() < deadline:  # until the server has seen the four close
            ok = http_request(port, "GET", "/v2/health/live").status == 200
        c.check(ok, "connections are served again once others close")
        server.check_clean_exit(c)


def queue_limit(onevit: str, model: TestModel, c: Checks) -> None:
    """--max-queue 8 and one decoding thread, held by a request of two 100-megapixel images (seconds
    of decoding and resizing): 3 requests of 2 images queue behind it, one more image is refused at once."""
    print("queue limit", flush=True)
    small = image_body([open(path, "rb").read() for path in model.images[:2]])
    with ServeProcess(onevit, model.path, "--max-batch", "8", "--max-queue", "8", "--decode-threads", "1",
                      "--max-image-pixels", "100000000") as server:
        port = server.http_port
        alone = infer_request(port, model.name, *small)
        expected = infer_outputs(alone.headers, alone.body)["logits"] if alone.status == 200 else None
        c.check(expected is not None, f"the two images alone: {alone.status}")
        blank = png_blank(10000, 10000)
        bodies = [image_body([blank, blank])] + [small] * 3
        results = [None] * len(bodies)

        def send(i):
            results[i] = infer_request(port, model.name, *bodies[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        queued = 0
        for i, t in enumerate(threads):
            t.start()
            deadline = time.monotonic() + 30
            while queued < 2 * (i + 1) and time.monotonic() < deadline:
                queued = metric_values(http_request(port, "GET", "/metrics").body.decode()).get("onevit_queued_images")
        c.check(queued == 8, f"8 images queued behind the slow decoding (got {queued})")
        body, header = image_body([open(model.images[0], "rb").read()])
        over = infer_request(port, model.name, body, header)
        c.check(over.status == 503 and "--max-queue" in over.error(), f"over --max-queue: {over.status} {over.error()}")
        for t in threads:
            t.join()
        c.check(results[0].status == 200, f"the slow request: {results[0].status} {results[0].error()}")
        for i, reply in enumerate(results[1:]):
            ok = reply.status == 200 and np.array_equal(infer_outputs(reply.headers, reply.body)["logits"], expected)
            c.check(ok, f"queued request {i}: {reply.status}, the logits of the same images served alone")
        decoded = metric_values(http_request(port, "GET", "/metrics").body.decode()).get("onevit_decode_duration_seconds_count")
        c.check(decoded == 5, f"5 requests decoded (the refused one was not): {decoded}")
        server.check_clean_exit(c)


def image_slots(onevit: str, model: TestModel, tmp: str, c: Checks) -> None:
    """A binary tensor is read into image slots, a fixed number of them (the ready line says how
    many): with every slot held by a client whose tensor has begun to arrive, the next tensor gets
    503 at once; once those clients hang up, requests are served again. Held again at SIGTERM
    past --shutdown-timeout-s: exit status 1, the slots' holders dropped cleanly."""
    print("image slots", flush=True)
    x = np.random.default_rng(7).standard_normal((1,) + model.shape).astype(np.float32)
    expected = reference_logits(onevit, model.path, x, tmp)
    body, header = binary_tensor_body(x)
    with ServeProcess(onevit, model.path, "--max-batch", "1", "--max-queue", "1", "--shutdown-timeout-s", "1") as server:
        port = server.http_port
        slots = int(re.search(r"(\d+) image slots", next(line for line in server.log if "ready:" in line)).group(1))
        whole = raw_infer(model.name, body, header)
        begun = whole[:len(whole) - len(body) + header + 1]  # the header, the JSON, the tensor's first byte
        deadline = time.monotonic() + 60

        def hold_every_slot():
            # One more holder while a tensor is still served: a holder that met the slots of clients
            # gone but not yet seen gone was refused (503, closed), and the server may not have read
            # every holder's first byte yet.
            holders = []
            refused = None
            while time.monotonic() < deadline and (refused is None or refused.status == 200):
                holders.append(socket.create_connection(("127.0.0.1", port), timeout=30))
                holders[-1].sendall(begun)
                if len(holders) >= slots:
                    refused = infer_request(port, model.name, body, header)
            c.check(refused is not None and refused.status == 503 and "image slots" in refused.error(),
                    f"every one of {slots} image slots held: {refused.status if refused else None} "
                    f"{refused.error() if refused else ''}")
            return holders

        for s in hold_every_slot():
            s.close()
        served = good_request(server, model, x, expected)
        while not served and time.monotonic() < deadline:  # until the server has seen them close
            served = good_request(server, model, x, expected)
        c.check(served, "served again once the holders hung up")
        holders = hold_every_slot()
        c.check(server.stop() == 1, "SIGTERM with every slot held past --shutdown-timeout-s: exit status 1")
        for s in holders:
            s.close()


# --- 5. SIGTERM under load ---------------------------------------------------------------------

def sigterm_under_load(onevit: str, model: TestModel, c: Checks, clients: int = 16) -> None:
    print(f"SIGTERM under load ({clients} clients)", flush=True)
    import http.client
    x = np.random.default_rng(6).standard_normal((2,) + model.shape).astype(np.float32)
    body, header = binary_tensor_body(x)
    answered = [0] * clients
    broken: list[str] = []
    unanswered: list[str] = []  # requests the server closed the connection on (not received, if all is well)
    with ServeProcess(onevit, model.path, "--max-batch", "4") as server:
        def client(k):
            while True:
                conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
                try:
                    while True:
                        conn.request("POST", f"/v2/models/{model.name}/infer", body,
                                     {"Inference-Header-Content-Length": str(header)})
                        reply = conn.getresponse()
                        data = reply.read()
                        if reply.status != 200:
                            broken.append(f"client {k}: {reply.status} {data[:100]!r}")
                        answered[k] += 1
                        if reply.getheader("Connection", "").lower() == "close":
                            break
                except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
                    unanswered.append(f"{type(e).__name__}: {e}")  # closed before our request was read
                except http.client.IncompleteRead as e:
                    broken.append(f"client {k}: a response cut short: {e}")
                except OSError as e:
                    broken.append(f"client {k}: {e}")
                finally:
                    conn.close()
                try:  # the listener closes at SIGTERM: then stop
                    socket.create_connection(("127.0.0.1", server.http_port), timeout=5).close()
                except OSError:
                    return

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(answered) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = server.stop(signal.SIGTERM)
        for t in threads:
            t.join(60)
        c.check(status == 0, f"exit status {status} after SIGTERM under load")
        c.check(not broken, f"{len(broken)} broken exchanges: {broken[:3]}")
        stopped = [line for line in server.log if "stopped:" in line]
        match = re.search(r"(\d+) inference requests received, (\d+) answered", stopped[-1] if stopped else "")
        received, replied = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
        c.check(received == replied == sum(answered),
                f"received {received}, answered {replied}, clients got {sum(answered)} answers; "
                f"connections closed on a request: {unanswered}")
        print(f"  {sum(answered)} requests answered, then a clean exit", flush=True)


def main(argv=None) -> int:
    ap = argument_parser(__doc__.split("\n")[0], keep=True)
    ap.add_argument("--data", help="shared data (default: <repo>/../shared/data); DeiT-tiny's part is skipped without")
    ap.add_argument("--digits-only", action="store_true",
                    help="skip DeiT-tiny's part (under ThreadSanitizer: the same threads, at 10x the cost)")
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, args.repo)
    data = os.path.abspath(args.data or os.path.join(args.repo, os.pardir, "shared", "data"))
    c = Checks()
    with scratch_dir("onevit_serve_test_", args.keep) as tmp:
        models = test_models(None if args.digits_only else data, tmp)
        digits = models[0]
        for model in models:
            protocol(onevit, model, tmp, c)
        headless_and_name(onevit, tmp, c)
        concurrency(onevit, digits, tmp, c)
        hostile(onevit, digits, tmp, c)
        key_and_limits(onevit, digits, tmp, c)
        queue_limit(onevit, digits, c)
        image_slots(onevit, digits, tmp, c)
        sigterm_under_load(onevit, digits, c)
    return c.report()

if __name__ == "__main__":
    sys.exit(exit_status(main))
