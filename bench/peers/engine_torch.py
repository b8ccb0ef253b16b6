"""PyTorch 2 on the CPU, in the configurations its documentation gives for inference.

f32 eager (torch.inference_mode); f32 torch.compile (Inductor, freezing on: the CPU inference
setting of the Inductor docs); bf16 autocast, eager and compiled; int8 by PT2E with the
X86InductorQuantizer (static, per-channel weights, calibrated on the calibration photos; saved
by torch.export once per calibration set), then torch.compile, which lowers the quantized patterns to oneDNN int8 kernels. With PyTorch 1.x (e.g.
Debian's, in CI) only the eager configurations exist; the others are reported as skipped.
"""

from __future__ import annotations

import os

import numpy as np
import torch

import peer_models
import timing

CALIBRATION_BATCH = 10


def _pt2e():
    """prepare_pt2e, convert_pt2e and the x86 quantizer: torchao's, else torch.ao's (older torch)."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    except ImportError:
        from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torch.ao.quantization.quantizer.x86_inductor_quantizer as xiq
    return prepare_pt2e, convert_pt2e, xiq


class Engine:
    name = "pytorch"

    def __init__(self, prepared: peer_models.Prepared, threads: int):
        torch.set_num_threads(threads)
        self.prepared = prepared
        self.module = peer_models.build_module(prepared.spec, prepared.dir)
        self.version = torch.__version__
        self.compiled: dict[tuple[str, int], object] = {}
        self.int8 = None
        self.has_compile = hasattr(torch, "compile") and int(torch.__version__.split(".")[0]) >= 2

    def cells(self, batches: list[int]) -> list[tuple[str, str, int]]:
        configs = [("f32", "eager"), ("f32", "compile"), ("bf16", "eager"), ("bf16", "compile"), ("int8", "pt2e")]
        return [(p, c, b) for b in batches for p, c in configs]

    def skipped(self, precision: str, config: str) -> str | None:
        if config != "eager" and not self.has_compile:
            return f"needs PyTorch 2 (torch.compile); this is {torch.__version__}"
        return None

    def _int8_model(self):
        """The PT2E int8 model, quantized once per calibration set and saved (torch.export)."""
        if self.int8 is None:
            name = os.path.splitext(os.path.basename(self.prepared.calibration))[0]
            path = os.path.join(self.prepared.dir, f"pytorch_pt2e_int8_{name}_{torch.__version__}.pt2")
            size = self.prepared.spec.image_size
            example = (torch.zeros(2, 3, size, size),)
            batch = {0: torch.export.Dim("batch", min=1, max=1024)}
            if not os.path.exists(path):
                prepare_pt2e, convert_pt2e, xiq = _pt2e()
                exported = torch.export.export(self.module, example, dynamic_shapes=(batch,)).module()
                quantizer = xiq.X86InductorQuantizer()
                quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
                observed = prepare_pt2e(exported, quantizer)
                calibration = np.load(self.prepared.calibration)
                with torch.no_grad():
                    for i in range(0, len(calibration), CALIBRATION_BATCH):
                        observed(torch.from_numpy(calibration[i:i + CALIBRATION_BATCH]))
                quantized = convert_pt2e(observed)
                partial = path[:-len(".pt2")] + ".tmp.pt2"  # torch.export.save wants the suffix
                torch.export.save(torch.export.export(quantized, example, dynamic_shapes=(batch,)), partial)
                os.replace(partial, path)
            self.int8 = torch.export.load(path).module()
        return self.int8

    def _callable(self, precision: str, config: str, batch: int):
        """A function of x (a tensor) that gives the logits, compiled on first use at this batch."""
        if config == "eager":
            return self.module
        key = (precision, batch)
        if key not in self.compiled:
            import torch._inductor.config as inductor
            inductor.freezing = True
            model = self._int8_model() if precision == "int8" else self.module
            self.compiled[key] = torch.compile(model, dynamic=False)
        return self.compiled[key]

    def run(self, precision: str, config: str, batch: int):
        """A no-argument function that runs the cell once on a fixed input, and one that takes x."""
        fn = self._callable(precision, config, batch)

        def forward(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode() if config == "eager" else torch.no_grad(), \
                    torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                return fn(x)
        return forward

    def logits(self, precision: str, config: str, batch: int, x: np.ndarray) -> np.ndarray:
        return self.run(precision, config, batch)(torch.from_numpy(x)).float().numpy()

    def time(self, precision: str, config: str, batch: int, x: np.ndarray, **rule) -> dict:
        forward, tensor = self.run(precision, config, batch), torch.from_numpy(x)
        return timing.time_sync(lambda: forward(tensor), batch, **rule)

    def details(self, precision: str, config: str, batch: int) -> dict:
        return {"threads": torch.get_num_threads()}
