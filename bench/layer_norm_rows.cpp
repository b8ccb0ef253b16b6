// LayerNorm rows into bf16 or s8 by the four-row AVX-512 kernel
// (ops/layer_norm_avx512.hpp) beside the generic row loop (normalize_row, then
// store_row), one task's rows on one core, with the rows where a forward may
// find them: in L2, in L3, or src and/or dst evicted to DRAM. ns a row, the
// fastest of the repetitions (docs/performance.md, "LayerNorm rows from
// memory").
//
//   build/bench/layer_norm_rows [dim = 384] [rows = 175] [bf16 | s8]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ops/layer_norm_avx512.hpp"
#include "ops/norm.hpp"
#include "ops/quantize.hpp"
#include "runtime/aligned_buffer.hpp"
#include "runtime/thread_cpu_clock.hpp"

using namespace onevit;

namespace {

volatile unsigned char g_sink;

// Reads a line of every 64 bytes: brings them into the cache, or, for a
// buffer larger than the L3, evicts the rest.
void touch(const void* p, std::size_t bytes) {
    unsigned char sum = 0;
    for (std::size_t at = 0; at < bytes; at += 64) sum += static_cast<const unsigned char*>(p)[at];
    g_sink = sum;
}

}  // namespace

int main(int argc, char** argv) {
    const int dim = argc > 1 ? std::atoi(argv[1]) : 384, rows = argc > 2 ? std::atoi(argv[2]) : 175;
    const Activation::Type type =
        argc > 3 && std::string(argv[3]) == "s8" ? Activation::Type::s8 : Activation::Type::bf16;
    const NormParams p0{Norm::layer, dim, 1e-6f, nullptr, nullptr};
    if (dim < 16 || rows < 1 || !layer_norm_rows_avx512_runs(p0, type)) {
        std::fprintf(stderr, "needs AVX512-BF16 and a width of a multiple of 16\n");
        return 1;
    }
    // The task's rows start at row `first` of the buffers, as a forward's second task.
    const int first = rows, total = 3 * rows;
    AlignedBuffer src(std::size_t(total) * dim), dst(std::size_t(total) * dim), scale(dim), shift(dim),
        scratch(std::size_t(kLayerNormRowsAtOnce) * dim), row_scales(total);
    for (std::size_t i = 0; i < src.size(); ++i) src.data()[i] = float(i * 2654435761u % 1000) / 500.f - 1.f;
    for (int i = 0; i < dim; ++i) scale.data()[i] = 1.f + 1e-3f * i, shift.data()[i] = 0.1f;
    const NormParams p{Norm::layer, dim, 1e-6f, scale.data(), shift.data()};
    const Activation out(dst.data(), type, row_scales.data());
    const float* src_rows = src.data() + std::size_t(first) * dim;
    const void* dst_rows = out.at(first, dim);
    const std::size_t src_bytes = std::size_t(rows) * dim * 4,
                      dst_bytes = std::size_t(rows) * dim * Activation::bytes_per_element(type);
    AlignedBuffer l2_sized(std::size_t(3) << 18), dram_sized(std::size_t(16) << 20);  // 3 MB, 64 MB
    std::memset(l2_sized.data(), 1, l2_sized.size() * 4);
    std::memset(dram_sized.data(), 1, dram_sized.size() * 4);

    const char* states[] = {"in L2", "in L3", "src and dst from DRAM", "src from DRAM", "dst from DRAM"};
    std::printf("LayerNorm of %d rows of %d into %s, ns a row\n", rows, dim,
                type == Activation::Type::s8 ? "s8" : "bf16");
    for (int state = 0; state < 5; ++state) {
        double best[2] = {1e300, 1e300};
        for (int rep = 0; rep < (state < 2 ? 200 : 40); ++rep)
            for (int kernel = 0; kernel < 2; ++kernel) {
                if (state == 0) touch(src_rows, src_bytes), touch(dst_rows, dst_bytes);
                if (state == 1) touch(l2_sized.data(), l2_sized.size() * 4);
                if (state >= 2) touch(dram_sized.data(), dram_sized.size() * 4);
                if (state == 3) touch(dst_rows, dst_bytes);
                if (state == 4) touch(src_rows, src_bytes);
                const double start = thread_cpu_ms();
                if (kernel == 0) {
                    layer_norm_rows_avx512(p, src.data(), first, rows, out, scratch.data());
                } else {
                    for (int row = first; row < first + rows; ++row) {
                        normalize_row(p, src.data() + std::size_t(row) * dim, scratch.data());
                        store_row(scratch.data(), dim, out, row, dim);
                    }
                }
                best[kernel] = std::min(best[kernel], (thread_cpu_ms() - start) * 1e6);
            }
        std::printf("%-22s four rows %6.1f   row loop %6.1f\n", states[state], best[0] / rows, best[1] / rows);
    }
}
