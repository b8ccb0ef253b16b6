#!/usr/bin/env python3
"""onevit serve driven by Triton's own client library (tritonclient, from PyPI),
over HTTP and gRPC: a client of the Open Inference Protocol this project did not write.

    PY=$(tests/serve/setup_client_venv.sh) && $PY tests/serve/triton_client_test.py --onevit build/apps/onevit

Every endpoint, on the bundled digits model and (with ../shared/data) DeiT-tiny:
liveness, readiness, server and model metadata; tensor inference with binary and
JSON tensors (HTTP) and raw contents (gRPC), logits bit-identical to `onevit infer`;
image inference (BYTES files) with the classification extension equal to
`onevit classify --json`; errors raised as the client's InferenceServerException;
an API key sent as the client's headers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import REPO, ServeProcess  # noqa: E402


class Checks:
    def __init__(self):
        self.failures, self.passed = [], 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"  FAIL {what}", flush=True)
        return ok

    def raises(self, call, what: str, words: str) -> None:
        try:
            call()
        except InferenceServerException as e:
            self.check(words in str(e), f"{what}: the client's exception says '{e}', want '{words}'")
            return
        self.check(False, f"{what}: no InferenceServerException")


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def reference_logits(onevit: str, model: str, x: np.ndarray, tmp: str) -> np.ndarray:
    np.save(os.path.join(tmp, "in.npy"), x)
    run([onevit, "infer", "--model", model, "--input", os.path.join(tmp, "in.npy"), "--output",
         os.path.join(tmp, "out.npy")])
    return np.load(os.path.join(tmp, "out.npy"))


def reference_topk(onevit: str, model: str, images: list[str], top: int) -> dict:
    lines = run([onevit, "classify", "--model", model, "--top", str(top), "--json", *images]).splitlines()
    return {json.loads(line)["image"]: json.loads(line)["topk"] for line in lines if line.strip()}


def same_topk(strings, topk) -> bool:
    mine = [(s.decode() if isinstance(s, bytes) else s).split(":", 2) for s in strings]
    return len(mine) == len(topk) and all(
        float(p) == t["prob"] and int(i) == t["index"] and label == t["label"] for (p, i, label), t in zip(mine, topk))


def drive(client_module, client, protocol: str, onevit: str, name: str, model_path: str, shape: tuple,
          classes: int, images: list[str], tmp: str, c: Checks) -> None:
    """Every endpoint through one client (tritonclient.http or tritonclient.grpc)."""
    print(f"{protocol}: {name}", flush=True)
    c.check(client.is_server_live(), f"{protocol} is_server_live")
    c.check(client.is_server_ready(), f"{protocol} is_server_ready")
    c.check(client.is_model_ready(name), f"{protocol} is_model_ready")
    server_meta = client.get_server_metadata()
    model_meta = client.get_model_metadata(name)
    if protocol == "grpc":  # protobuf messages; the HTTP client returns the JSON as dicts
        server_meta = {"name": server_meta.name, "extensions": list(server_meta.extensions)}
        model_meta = {"inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                                 for t in model_meta.inputs],
                      "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                                  for t in model_meta.outputs]}
    c.check(server_meta["name"] == "onevit" and "classification" in server_meta["extensions"],
            f"{protocol} server metadata {server_meta}")
    inputs = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in model_meta["inputs"]}
    c.check(inputs == {"pixel_values": ("FP32", [-1, *shape]), "image": ("BYTES", [-1])},
            f"{protocol} model metadata inputs {model_meta['inputs']}")
    c.check([(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in model_meta["outputs"]]
            == [("logits", "FP32", [-1, classes])], f"{protocol} model metadata outputs {model_meta['outputs']}")

    x = np.random.default_rng(11).standard_normal((3,) + shape).astype(np.float32)
    expected = reference_logits(onevit, model_path, x, tmp)
    ways = [("binary", True, True), ("no outputs named", True, None)]
    if protocol == "http":
        ways += [("JSON", False, False), ("binary in, JSON out", True, False)]
    for how, binary_in, binary_out in ways:
        tensor = client_module.InferInput("pixel_values", list(x.shape), "FP32")
        if protocol == "http":
            tensor.set_data_from_numpy(x, binary_data=binary_in)
        else:
            tensor.set_data_from_numpy(x)
        outputs = None
        if binary_out is not None:
            outputs = [client_module.InferRequestedOutput("logits", binary_data=binary_out)
                       if protocol == "http" else client_module.InferRequestedOutput("logits")]
        result = client.infer(name, [tensor], outputs=outputs, request_id="triton-1")
        logits = result.as_numpy("logits")
        c.check(logits is not None and np.array_equal(logits, expected),
                f"{protocol} {how}: logits differ from onevit infer")
        response = result.get_response()
        c.check((response["id"] if protocol == "http" else response.id) == "triton-1", f"{protocol} request id")

    top = 5
    files = np.array([open(path, "rb").read() for path in images[:3]], dtype=np.object_)
    tensor = client_module.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(files, **({"binary_data": True} if protocol == "http" else {}))
    result = client.infer(name, [tensor], outputs=[client_module.InferRequestedOutput("logits", class_count=top)])
    strings = result.as_numpy("logits")
    ref = reference_topk(onevit, model_path, images[:3], top)
    c.check(strings is not None and strings.shape == (len(files), top), f"{protocol} classification shape")
    if strings is not None:
        for i, path in enumerate(images[:3]):
            c.check(same_topk(strings[i], ref[path]), f"{protocol} {os.path.basename(path)}: {strings[i]} != "
                                                       f"classify's {ref[path]}")

    wrong = client_module.InferInput("pixel_values", [1, 5, 5, 5], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 5, 5, 5), np.float32))
    c.raises(lambda: client.infer(name, [wrong]), f"{protocol} wrong shape", "shape")
    c.raises(lambda: client.infer("no_such_model", [tensor]), f"{protocol} unknown model", "unknown model")
    c.raises(lambda: client.get_model_metadata("no_such_model"), f"{protocol} unknown model metadata",
             "unknown model")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--data", default=os.path.join(REPO, os.pardir, "shared", "data"))
    args = ap.parse_args()
    onevit = os.path.abspath(args.onevit)
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="onevit_triton_") as tmp:
        samples = sorted(os.path.join(REPO, "weights", "samples", f)
                         for f in os.listdir(os.path.join(REPO, "weights", "samples")) if f.endswith(".png"))
        models = [("digits_vit", os.path.join(REPO, "weights", "digits_vit.ovit"), (1, 32, 32), 10, samples)]
        checkpoint = os.path.join(args.data, "deit_tiny_patch16_224", "model.safetensors")
        if os.path.isfile(checkpoint):
            deit = os.path.join(tmp, "deit_tiny.ovit")
            run(["/usr/bin/python3", os.path.join(REPO, "weights", "convert.py"), checkpoint, "--arch",
                 "deit_tiny_patch16_224", "--labels", os.path.join(args.data, "labels", "imagenet_classes.txt"),
                 "-o", deit])
            photos = sorted(os.path.join(args.data, "images", f) for f in os.listdir(os.path.join(args.data, "images"))
                            if f.endswith(".jpg"))
            models.append(("deit_tiny", deit, (3, 224, 224), 1000, photos))
        else:
            print(f"(no {checkpoint}: DeiT-tiny's part skipped)")

        for name, path, shape, classes, images in models:
            with ServeProcess(onevit, path, "--max-batch", "4") as server:
                http_client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
                drive(httpclient, http_client, "http", onevit, name, path, shape, classes, images, tmp, c)
                http_client.close()
                grpc_client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
                drive(grpcclient, grpc_client, "grpc", onevit, name, path, shape, classes, images, tmp, c)
                grpc_client.close()
                c.check(server.stop() == 0, "exit status 0 after SIGTERM")

        print("API key", flush=True)
        key_file = os.path.join(tmp, "key")
        with open(key_file, "w") as f:
            f.write("triton-key\n")
        name, path, shape = models[0][:3]
        with ServeProcess(onevit, path, "--api-key-file", key_file) as server:
            x = np.zeros((1,) + shape, np.float32)
            for protocol, module, url in [("http", httpclient, f"127.0.0.1:{server.http_port}"),
                                          ("grpc", grpcclient, f"127.0.0.1:{server.grpc_port}")]:
                # gRPC metadata keys are lower case (the HTTP header's name is not case-sensitive).
                header = "Authorization" if protocol == "http" else "authorization"
                good = {header: "Bearer triton-key"}
                client = module.InferenceServerClient(url)
                tensor = module.InferInput("pixel_values", list(x.shape), "FP32")
                tensor.set_data_from_numpy(x)
                c.check(client.is_server_live(), f"{protocol} live without a key")
                c.raises(lambda: client.infer(name, [tensor]), f"{protocol} infer without a key", "API key")
                c.raises(lambda: client.infer(name, [tensor], headers={header: "Bearer wrong"}),
                         f"{protocol} infer with a wrong key", "wrong API key")
                c.check(client.infer(name, [tensor], headers=good).as_numpy("logits").shape == (1, 10),
                        f"{protocol} infer with the key")
                c.check(client.get_model_metadata(name, headers=good) is not None, f"{protocol} metadata with the key")
                client.close()
            c.check(server.stop() == 0, "exit status 0 after SIGTERM")

    if c.failures:
        print(f"FAIL: {len(c.failures)} of {c.passed + len(c.failures)} checks")
        for failure in c.failures:
            print(f"  {failure}")
        return 1
    print(f"PASS: {c.passed} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
