#include "runtime/measure.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include <oneapi/dnnl/dnnl.hpp>

namespace onevit {

double forward_flops(const Architecture& a) {
    const double n = a.tokens(), d = a.dim, inner = a.inner_dim(), m = a.mlp_dim;
    const double patch_embed = double(a.patch_tokens()) * d * a.patch_dim();
    const double qkv = n * d * 3 * inner;
    const double attention = 2 * n * n * inner;  // q kᵀ and p v, all heads
    const double proj = a.attn_proj ? n * inner * d : 0;
    const double mlp = 2 * n * d * m;
    const double e = a.embed_dim();
    const double pool_proj = double(a.pooled_dim()) * a.pool_proj;
    const double head = pool_proj + (a.head == Head::mlp ? e * a.head_hidden + double(a.head_hidden) * a.num_classes
                                                         : (a.head == Head::distilled ? 2 : 1) * e * a.num_classes);
    return 2 * (patch_embed + a.depth * (qkv + attention + proj + mlp) + head);
}

namespace {

double thread_cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return double(now.tv_sec) + now.tv_nsec / 1e9;
}

// Best of 10 runs of the product at `precision` on `threads` OpenMP threads, timed by `seconds`.
template <class Seconds>
double matmul_peak(int threads, Precision precision, Seconds seconds) {
    using namespace dnnl;
    using tag = memory::format_tag;
    constexpr memory::dim M = 1576, K = 768, N = 3072;
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);  // oneDNN's own OpenMP threading: the reference point
    const engine cpu(engine::kind::cpu, 0);
    stream s(cpu);
    const memory::data_type type = precision == Precision::f32    ? memory::data_type::f32
                                   : precision == Precision::bf16 ? memory::data_type::bf16
                                                                  : memory::data_type::s8;
    const memory::desc src({M, K}, type, tag::ab);
    const memory::desc weights({K, N}, type, tag::any);
    const memory::desc dst({M, N}, memory::data_type::f32, tag::ab);
    const matmul::primitive_desc pd(matmul::desc(src, weights, dst), cpu);
    const memory src_mem(src, cpu), weights_mem(pd.weights_desc(), cpu), dst_mem(dst, cpu);
    const matmul product(pd);
    const auto run = [&] {
        product.execute(s, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weights_mem}, {DNNL_ARG_DST, dst_mem}});
        s.wait();
    };
    run();
    double best = 1e30;
    for (int i = 0; i < 10; ++i) {
        const double start = seconds();
        run();
        best = std::min(best, seconds() - start);
    }
    omp_set_num_threads(saved_threads);
    return 2.0 * M * K * N / best / 1e9;
}

}  // namespace

double matmul_peak_gflops(int threads, Precision precision) {
    return matmul_peak(threads, precision, [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    });
}

double matmul_peak_gflops_thread_cpu(Precision precision) { return matmul_peak(1, precision, thread_cpu_seconds); }

}  // namespace onevit
