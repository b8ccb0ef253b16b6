#include "runtime/measure.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include <oneapi/dnnl/dnnl.hpp>

#include "model/graph.hpp"
#include "runtime/thread_cpu_clock.hpp"

namespace onevit {

double forward_flops(const Architecture& a) { return describe(a).flops(); }

namespace {

double thread_cpu_seconds() { return thread_cpu_ms() / 1e3; }

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
