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
import os
import sys
import tempfile

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import REPO, Checks, ServeProcess, reference_logits, reference_topk, same_topk, test_models  # noqa: E402


def raises(c: Checks, call, what: str, words: str) -> None:
    """c checks that call raises the client's InferenceServerException, saying `words`."""
    try:
        call()
    except InferenceServerException as e:
        c.check(words in str(e), f"{what}: the client's exception says '{e}', want '{words}'")
        return
    c.check(False, f"{what}: no InferenceServerException")


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
    raises(c, lambda: client.infer(name, [wrong]), f"{protocol} wrong shape", "shape")
    raises(c, lambda: client.infer("no_such_model", [tensor]), f"{protocol} unknown model", "unknown model")
    raises(c, lambda: client.get_model_metadata("no_such_model"), f"{protocol} unknown model metadata",
             "unknown model")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--data", default=os.path.join(REPO, os.pardir, "shared", "data"))
    args = ap.parse_args()
    onevit = os.path.abspath(args.onevit)
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="onevit_triton_") as tmp:
        models = [(m.name, m.path, m.shape, m.classes, m.images) for m in test_models(args.data, tmp)]

        for name, path, shape, classes, images in models:
            with ServeProcess(onevit, path, "--max-batch", "4") as server:
                http_client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
                drive(httpclient, http_client, "http", onevit, name, path, shape, classes, images, tmp, c)
                http_client.close()
                grpc_client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
                drive(grpcclient, grpc_client, "grpc", onevit, name, path, shape, classes, images, tmp, c)
                grpc_client.close()
                server.check_clean_exit(c)

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
                raises(c, lambda: client.infer(name, [tensor]), f"{protocol} infer without a key", "API key")
                raises(c, lambda: client.infer(name, [tensor], headers={header: "Bearer wrong"}),
                         f"{protocol} infer with a wrong key", "wrong API key")
                c.check(client.infer(name, [tensor], headers=good).as_numpy("logits").shape == (1, 10),
                        f"{protocol} infer with the key")
                c.check(client.get_model_metadata(name, headers=good) is not None, f"{protocol} metadata with the key")
                client.close()
            server.check_clean_exit(c)

    return c.report()

if __name__ == "__main__":
    sys.exit(main())
