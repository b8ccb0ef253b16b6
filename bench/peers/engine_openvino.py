"""OpenVINO's CPU plugin, configured as its documentation says for each case.

The ONNX export is read, reshaped to the static batch of the cell (static shapes are the fast
path), and compiled by `Core.compile_model(model, "CPU", config)` with PERFORMANCE_HINT LATENCY
(batch 1, and batch 8 as one request) or THROUGHPUT (batch 8: as many requests in flight as the
plugin's OPTIMAL_NUMBER_OF_INFER_REQUESTS, through an AsyncInferQueue), INFERENCE_PRECISION_HINT
f32 or bf16, INFERENCE_NUM_THREADS `threads`. int8: `nncf.quantize(model, dataset,
model_type=nncf.ModelType.TRANSFORMER, subset_size=N)` on the calibration photos (NNCF's
post-training quantization for transformers: int8 MatMuls, per-channel weights, SDPA fused by the
plugin), saved as IR once; the plugin's own choice of precision for what stays float.
CPU pinning is left off, as for every engine here: all run in one process pinned to the same CPUs.
"""

from __future__ import annotations

import os

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

import peer_models
import timing


class Engine:
    name = "openvino"

    def __init__(self, prepared: peer_models.Prepared, threads: int):
        self.prepared = prepared
        self.threads = threads
        self.core = ov.Core()
        self.version = ov.get_version()
        self.compiled: dict[tuple[str, str, int], ov.CompiledModel] = {}
        self.queues: dict[tuple[str, str, int], ov.AsyncInferQueue] = {}

    def cells(self, batches: list[int]) -> list[tuple[str, str, int]]:
        cells = []
        for b in batches:
            for precision in ("f32", "bf16", "int8"):
                cells += [(precision, "latency", b)] + ([(precision, "throughput", b)] if b > 1 else [])
        return cells

    def skipped(self, precision: str, config: str) -> str | None:
        if precision == "bf16" and "BF16" not in self.core.get_property("CPU", props.device.capabilities):
            return "this CPU has no bf16 in OpenVINO's CPU plugin"
        return None

    def _model_path(self, precision: str) -> str:
        if precision != "int8":
            return self.prepared.onnx
        name = os.path.splitext(os.path.basename(self.prepared.calibration))[0]
        path = os.path.join(self.prepared.dir, f"openvino_nncf_int8_{name}.xml")
        if not os.path.exists(path):
            import nncf
            calibration = np.load(self.prepared.calibration)
            dataset = nncf.Dataset([image[None] for image in calibration])
            quantized = nncf.quantize(self.core.read_model(self.prepared.onnx), dataset,
                                      model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration))
            ov.save_model(quantized, path[:-4] + ".tmp.xml")
            os.replace(path[:-4] + ".tmp.bin", path[:-4] + ".bin")
            os.replace(path[:-4] + ".tmp.xml", path)
        return path

    def _compiled(self, precision: str, config: str, batch: int) -> ov.CompiledModel:
        key = (precision, config, batch)
        if key not in self.compiled:
            model = self.core.read_model(self._model_path(precision))
            size = self.prepared.spec.image_size
            model.reshape([batch, 3, size, size])
            mode = hints.PerformanceMode.LATENCY if config == "latency" else hints.PerformanceMode.THROUGHPUT
            settings = {hints.performance_mode: mode, props.inference_num_threads: self.threads,
                        hints.enable_cpu_pinning: False}
            if precision != "int8":
                settings[hints.inference_precision] = ov.Type.f32 if precision == "f32" else ov.Type.bf16
            self.compiled[key] = self.core.compile_model(model, "CPU", settings)
        return self.compiled[key]

    def logits(self, precision: str, config: str, batch: int, x: np.ndarray) -> np.ndarray:
        return self._compiled(precision, config, batch)({0: x})[0]

    def time(self, precision: str, config: str, batch: int, x: np.ndarray, **rule) -> dict:
        compiled = self._compiled(precision, config, batch)
        if config == "latency":
            request = compiled.create_infer_request()
            return timing.time_sync(lambda: request.infer({0: x}), batch, **rule)
        key = (precision, config, batch)
        if key not in self.queues:
            self.queues[key] = ov.AsyncInferQueue(compiled, compiled.get_property(props.optimal_number_of_infer_requests))
        queue = self.queues[key]
        return timing.time_async(lambda submitted: queue.start_async({0: x}, submitted), queue.wait_all,
                                 lambda done: queue.set_callback(lambda request, submitted: done(submitted)),
                                 len(queue), batch, **rule)

    def details(self, precision: str, config: str, batch: int) -> dict:
        compiled = self._compiled(precision, config, batch)
        return {"threads": compiled.get_property(props.inference_num_threads),
                "streams": _as_int(compiled.get_property(props.num_streams)),
                "requests": compiled.get_property(props.optimal_number_of_infer_requests),
                "inference_precision": str(compiled.get_property(hints.inference_precision))}


def _as_int(streams) -> int:
    """num_streams: an ov.properties.streams.Num before OpenVINO 2026, a plain int since."""
    return int(streams.to_integer() if hasattr(streams, "to_integer") else streams)
