"""ONNX Runtime's CPU execution provider, as its documentation recommends for a transformer.

Every session: ORT_ENABLE_ALL graph optimisations, `threads` intra-op threads, sequential.
The model is the ONNX export after `quant_pre_process` (shape inference and ORT's own
optimisation, the step the quantization docs put first). int8 dynamic: `quantize_dynamic`
(int8 weights, activations quantized at run time); int8 static: `quantize_static` in QDQ format,
per-channel int8 weights, uint8 activations (U8S8, the fast pair on VNNI CPUs), MinMax ranges
from the calibration photos. Both quantized models are cached beside the export.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

import peer_models
import timing


class _Calibration:
    """quantize_static's CalibrationDataReader over calibration.npy, one image at a time."""

    def __init__(self, path: str):
        self.images = iter(np.load(path))

    def get_next(self):
        image = next(self.images, None)
        return None if image is None else {"x": image[None]}

    def rewind(self):  # not needed: one pass
        pass


class Engine:
    name = "onnxruntime"

    def __init__(self, prepared: peer_models.Prepared, threads: int):
        self.prepared = prepared
        self.threads = threads
        self.version = ort.__version__
        self.sessions: dict[str, ort.InferenceSession] = {}

    def cells(self, batches: list[int]) -> list[tuple[str, str, int]]:
        configs = [("f32", "all-opt"), ("int8", "dynamic"), ("int8", "static-qdq")]
        return [(p, c, b) for b in batches for p, c in configs]

    def skipped(self, precision: str, config: str) -> str | None:
        return None

    def _model(self, config: str) -> str:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                              quantize_dynamic, quantize_static)
        base = os.path.join(self.prepared.dir, "ort_pre.onnx")
        if not os.path.exists(base):
            quant_pre_process(self.prepared.onnx, base + ".tmp", skip_symbolic_shape=False)
            os.replace(base + ".tmp", base)
        if config == "all-opt":
            return base
        calibration = os.path.basename(self.prepared.calibration)[: -len(".npy")]
        path = os.path.join(self.prepared.dir, f"ort_int8_{config}" + ("" if config == "dynamic" else
                                                                       f"_{calibration}") + ".onnx")
        if not os.path.exists(path):
            if config == "dynamic":
                quantize_dynamic(base, path + ".tmp", weight_type=QuantType.QInt8)
            else:
                quantize_static(base, path + ".tmp", _Calibration(self.prepared.calibration),
                                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
            os.replace(path + ".tmp", path)
        return path

    def _session(self, config: str) -> ort.InferenceSession:
        if config not in self.sessions:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            self.sessions[config] = ort.InferenceSession(self._model(config), options,
                                                         providers=["CPUExecutionProvider"])
        return self.sessions[config]

    def logits(self, precision: str, config: str, batch: int, x: np.ndarray) -> np.ndarray:
        return self._session(config).run(None, {"x": x})[0]

    def time(self, precision: str, config: str, batch: int, x: np.ndarray, **rule) -> dict:
        session = self._session(config)
        return timing.time_sync(lambda: session.run(None, {"x": x}), batch, **rule)

    def details(self, precision: str, config: str, batch: int) -> dict:
        return {"threads": self.threads, "model": os.path.basename(self._model(config))}
