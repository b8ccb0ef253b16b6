"""PyTorch 2 on the CPU, in the configurations its documentation gives for inference.

f32 eager (torch.inference_mode); f32 torch.compile (Inductor, freezing on: the CPU inference
setting of the Inductor docs); bf16 autocast, eager and compiled; int8 by PT2E with the
X86InductorQuantizer (static, per-channel weights, calibrated on the calibration photos; saved
by torch.export once per calibration set), then torch.compile as torchao's "PyTorch 2 Export
Quantization with X86 Backend through Inductor" tutorial gives it: freezing, the C++ wrapper, and
either int8-mixed-f32 (`pt2e`) or int8-mixed-bf16 under bf16 autocast (`pt2e-bf16`). With PyTorch
1.x (e.g. Debian's, in CI) only the eager configurations exist; the others are reported as skipped.

The int8 lowering (quantize/dequantize + linear -> oneDNN qlinear_pointwise) is a set of Inductor
passes that torchao registers when its x86_inductor_quantizer module is imported, not torch itself:
a saved .pt2 compiled without that import runs dequantize -> f32 addmm, as fast as f32 compile and
no faster. So the module is always imported before loading, the compiled code of every int8 cell
is read, and a cell whose quantized layers do not all run as oneDNN int8 kernels is refused with
an error instead of being timed as PT2E; `details` gives the kernel counts.
"""

from __future__ import annotations

import os
import re
from unittest import mock

import numpy as np
import torch

import peer_models
import timing

CALIBRATION_BATCH = 10
INT8_CONFIGS = {"pt2e": False, "pt2e-bf16": True}  # config: int8-mixed-bf16 (bf16 autocast)
# Calls in Inductor's output code, Python wrapper (torch.ops..., extern_kernels...) or C++ wrapper
# (aoti_torch_cpu_...); comment lines are dropped first, as they name the source ATen ops.
KERNEL_CALLS = {
    "onednn_int8": r"(?:torch\.ops\.onednn\.|aoti_torch_cpu__)q(?:linear|conv)_pointwise",
    "float_linear_conv": r"(?:extern_kernels\.|aoti_torch_cpu_)(?:addmm|mm|convolution)(?:_out)?\(|"
                         r"mkldnn\._linear_pointwise|mkl_linear",
    "float_bmm": r"(?:extern_kernels\.|aoti_torch_cpu_)(?:bmm|baddbmm)(?:_out)?\(",
}


def kernel_counts(code: str) -> dict[str, int]:
    """How many calls of each kind of matrix kernel Inductor's output code makes."""
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("#", "//"))]
    body = "\n".join(lines)
    return {kind: len(re.findall(pattern, body)) for kind, pattern in KERNEL_CALLS.items()}


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
        self.compiled: dict[tuple[str, str, int], object] = {}
        self.int8 = None
        self.int8_layers = 0  # the quantized model's dequantized weights: its int8 linears and convs
        self.kernels: dict[tuple[str, int], dict] = {}
        self.has_compile = hasattr(torch, "compile") and int(torch.__version__.split(".")[0]) >= 2

    def cells(self, batches: list[int]) -> list[tuple[str, str, int]]:
        configs = [("f32", "eager"), ("f32", "compile"), ("bf16", "eager"), ("bf16", "compile"),
                   *(("int8", c) for c in INT8_CONFIGS)]
        return [(p, c, b) for b in batches for p, c in configs]

    def skipped(self, precision: str, config: str) -> str | None:
        if config != "eager" and not self.has_compile:
            return f"needs PyTorch 2 (torch.compile); this is {torch.__version__}"
        return None

    def _int8_model(self):
        """The PT2E int8 model, quantized once per calibration set and saved (torch.export)."""
        if self.int8 is None:
            prepare_pt2e, convert_pt2e, xiq = _pt2e()  # also registers the int8 lowering passes
            name = os.path.splitext(os.path.basename(self.prepared.calibration))[0]
            path = os.path.join(self.prepared.dir, f"pytorch_pt2e_int8_{name}_{torch.__version__}.pt2")
            size = self.prepared.spec.image_size
            example = (torch.zeros(2, 3, size, size),)
            batch = {0: torch.export.Dim("batch", min=1, max=1024)}
            if not os.path.exists(path):
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
            self.int8_layers = sum("dequantize_per_channel" in str(n.target) for n in self.int8.graph.nodes)
        return self.int8

    def _compile_int8(self, config: str, batch: int):
        """The int8 model compiled for this batch, refused unless every quantized layer runs in int8."""
        import torch._functorch.config as functorch
        import torch._inductor.config as inductor
        from torch._inductor.graph import GraphLowering
        model = self._int8_model()
        compiled = torch.compile(model, dynamic=False)
        size = self.prepared.spec.image_size
        codes: list[str] = []
        # Compiled here, not at the first timed call, with the caches off so that the output code
        # is generated (and seen) every time.
        with mock.patch.object(GraphLowering, "save_output_code", codes.append), \
                inductor.patch(freezing=True, cpp_wrapper=True, fx_graph_cache=False), \
                functorch.patch(enable_autograd_cache=False), torch.no_grad(), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=INT8_CONFIGS[config]):
            compiled(torch.zeros(batch, 3, size, size))
        counts = kernel_counts("\n".join(codes))
        self.kernels[(config, batch)] = counts
        if not codes or not self.int8_layers or counts["onednn_int8"] < self.int8_layers:
            raise RuntimeError(
                f"PT2E not lowered to int8: {counts['onednn_int8']} of {self.int8_layers} quantized "
                f"layers run as oneDNN qlinear/qconv, {counts['float_linear_conv']} as float linear/conv "
                f"({len(codes)} graphs compiled); refused rather than timed as int8")
        return compiled

    def _callable(self, precision: str, config: str, batch: int):
        """A function of x (a tensor) that gives the logits, compiled on first use at this batch."""
        if config == "eager":
            return self.module
        key = (precision, config, batch)
        if key not in self.compiled:
            if precision == "int8":
                self.compiled[key] = self._compile_int8(config, batch)
            else:
                import torch._inductor.config as inductor
                inductor.freezing = True
                self.compiled[key] = torch.compile(self.module, dynamic=False)
        return self.compiled[key]

    def run(self, precision: str, config: str, batch: int):
        """A no-argument function that runs the cell once on a fixed input, and one that takes x."""
        fn = self._callable(precision, config, batch)

        def forward(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode() if config == "eager" else torch.no_grad(), \
                    torch.autocast("cpu", dtype=torch.bfloat16,
                                   enabled=precision == "bf16" or INT8_CONFIGS.get(config, False)):
                return fn(x)
        return forward

    def logits(self, precision: str, config: str, batch: int, x: np.ndarray) -> np.ndarray:
        return self.run(precision, config, batch)(torch.from_numpy(x)).float().numpy()

    def time(self, precision: str, config: str, batch: int, x: np.ndarray, **rule) -> dict:
        forward, tensor = self.run(precision, config, batch), torch.from_numpy(x)
        return timing.time_sync(lambda: forward(tensor), batch, **rule)

    def details(self, precision: str, config: str, batch: int) -> dict:
        found = {"threads": torch.get_num_threads()}
        if precision == "int8" and (config, batch) in self.kernels:
            found.update(kernels=self.kernels[(config, batch)], quantized_layers=self.int8_layers,
                         wrapper="cpp", freezing=True, mixed="bf16" if INT8_CONFIGS[config] else "f32",
                         quantizer=_pt2e()[2].__name__)
        return found
