// Figures for benchmarks (internal: onevit bench, bench/): the work of a forward
// pass, and the speed this machine's oneDNN reaches on a plain matmul — the
// limit a ViT runs against.
#pragma once

#include "onevit/model_info.hpp"

namespace onevit {

// Floating-point operations of one image's forward pass. Only the matrix
// products count (2 per multiply-add), as papers and timm's GMACs tables do:
// LayerNorm, softmax, GELU and the residual adds are well under 1%.
// ViT-B/16 at 224: 17.6 GMACs = 35.1 GFLOP.
double forward_flops(const Architecture& arch);

// GFLOP/s of oneDNN's own matmul on `threads` OpenMP threads, best of a few
// runs of a ViT-B MLP-sized product (1576 × 768 × 3072), in the data types
// the engine's linear layers use at `precision`: f32; bf16 · bf16 → f32; or
// s8 · s8 → f32 (a multiply-add counts 2 operations at every precision). Takes ~0.5 s.
double matmul_peak_gflops(int threads, Precision precision = Precision::f32);
// The same on the calling thread alone, timed in its CPU time (as emulate_forward
// times tiles: other processes on a shared machine do not count).
double matmul_peak_gflops_thread_cpu(Precision precision = Precision::f32);

}  // namespace onevit
