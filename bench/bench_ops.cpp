// Per-op benchmarks (Google Benchmark) at ViT-Ti/16, S/16 and B/16 shapes (224×224,
// 197 tokens), batch 1 and 8: the engine's patch embedding, attention half-block
// (LN1 → qkv → attention core → proj += x) and MLP half-block (LN2 → fc1 GELU →
// fc2 += x), each beside the same matrix products run by oneDNN alone.
//
//   --threads=N   engine threads, and oneDNN's OpenMP threads (default / 0: all cores)
//
// Names are <op>/<model>/<impl>/batch:B/threads:T, impl `onednn` (first) or `onevit`:
//   onednn: each of the op's matrix products as one oneDNN matmul of the full shape,
//           OpenMP-threaded, created and run outside any arena — what oneDNN alone
//           does for that work. Bias and the fused GELU / residual add are included;
//           LayerNorm, softmax and (for patch embedding) patch extraction are not.
//   onevit: the engine's steps, built inside the executor's arena and run by it.
// Counters: GFLOPS (the op's matrix-product work, 2 FLOPs per multiply-add, the
// same figure in both rows), items_per_second (images), and on onevit rows
// vs_onednn = onevit time / the onednn row's time (1.0 = as fast as oneDNN alone).
#include <benchmark/benchmark.h>
#include <omp.h>
#include <tbb/info.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "ops/attention.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/patch_embed.hpp"
#include "ops/schedule.hpp"
#include "runtime/thread_memory.hpp"

namespace {

using namespace onevit;
using dnnl::memory;

constexpr int kImage = 224, kPatch = 16, kChannels = 3, kHeadDim = 64;
constexpr int kPatches = (kImage / kPatch) * (kImage / kPatch);  // 196
constexpr int kTokens = kPatches + 1;                            // + the class token
constexpr int kPatchDim = kChannels * kPatch * kPatch;           // 768
constexpr float kNormEps = 1e-6f;

struct VitShape {
    const char* name;
    int dim;
    int mlp;
    int heads() const { return dim / kHeadDim; }
};
const VitShape kModels[] = {{"vit_tiny", 192, 768}, {"vit_small", 384, 1536}, {"vit_base", 768, 3072}};

enum class Part { patch_embed, attention, mlp };
const char* op_name(Part op) {
    static const char* const names[] = {"patch_embed", "attention", "mlp"};  // in Part's order
    return names[static_cast<int>(op)];
}

// Uniform in [-scale, scale] from a fixed seed: speed does not depend on the values,
// but they must be finite and not denormal.
void fill_random(float* data, std::size_t n, unsigned seed, float scale) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> value(-scale, scale);
    for (std::size_t i = 0; i < n; ++i) data[i] = value(generator);
}

AlignedBuffer random_buffer(std::size_t n, unsigned seed, float scale = 1.f) {
    AlignedBuffer buffer(n);
    fill_random(buffer.data(), n, seed, scale);
    return buffer;
}

// One matrix product of an op: batch × (m × k) · (k × n). `layer` products have
// constant weights and a bias (a linear layer); the others multiply activations
// (attention's q kᵀ and p v, one per image and head).
struct Product {
    memory::dim batch, m, k, n;
    bool layer;
    Epilogue epilogue;
    double flops() const { return 2.0 * batch * m * k * n; }
};

std::vector<Product> products(Part op, const VitShape& s, int batch) {
    const memory::dim rows = memory::dim(batch) * kTokens, D = s.dim, heads = memory::dim(batch) * s.heads();
    switch (op) {
        case Part::patch_embed:
            return {{1, memory::dim(batch) * kPatches, kPatchDim, D, true, Epilogue::none}};
        case Part::attention:
            return {{1, rows, D, 3 * D, true, Epilogue::none},                   // qkv
                    {heads, kTokens, kHeadDim, kTokens, false, Epilogue::none},  // q kᵀ
                    {heads, kTokens, kTokens, kHeadDim, false, Epilogue::none},  // p v
                    {1, rows, D, D, true, Epilogue::residual_add}};              // proj
        case Part::mlp:
            return {{1, rows, D, s.mlp, true, Epilogue::gelu_erf},       // fc1
                    {1, rows, s.mlp, D, true, Epilogue::residual_add}};  // fc2
    }
    return {};
}

double flops(Part op, const VitShape& s, int batch) {
    double total = 0;
    for (const Product& p : products(op, s, batch)) total += p.flops();
    return total;
}

// ---- oneDNN alone -------------------------------------------------------------

// oneDNN's own OpenMP threading, for the lifetime of this object. Primitives fix
// their team size when created, so it must cover creation as well as execution.
class OpenMPThreads {
public:
    explicit OpenMPThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
    ~OpenMPThreads() { omp_set_num_threads(saved_); }

private:
    int saved_;
};

class OneDnnProducts {
public:
    explicit OneDnnProducts(const std::vector<Product>& products) {
        for (const Product& p : products) add(p);
    }
    void run() {
        for (auto& [product, args] : products_) product.execute(stream_, args);
        stream_.wait();
    }

private:
    void add(const Product& p) {
        using tag = memory::format_tag;
        const bool batched = p.batch > 1;
        // Dense row-major, or (any) the layout oneDNN prefers.
        const auto md = [&](memory::dim rows, memory::dim cols, bool any = false) {
            const tag dense = batched ? tag::abc : tag::ab;
            const memory::dims dims = batched ? memory::dims{p.batch, rows, cols} : memory::dims{rows, cols};
            return memory::desc(dims, memory::data_type::f32, any ? tag::any : dense);
        };
        // Layer weights are constants: oneDNN picks their layout, as the engine does
        // at load. k and v are activations, multiplied as they are.
        const memory::desc weights = md(p.k, p.n, p.layer);
        const memory::desc bias = p.layer ? md(1, p.n) : memory::desc();
        dnnl::post_ops post_ops;
        if (p.epilogue == Epilogue::gelu_erf) post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
        if (p.epilogue == Epilogue::residual_add) post_ops.append_sum(1.f);
        dnnl::primitive_attr attr;
        attr.set_post_ops(post_ops);
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md(p.m, p.k), weights, bias, md(p.m, p.n)), attr,
                                              engine_);
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, random_memory(pd.src_desc())},
                                             {DNNL_ARG_WEIGHTS, random_memory(pd.weights_desc())},
                                             {DNNL_ARG_DST, random_memory(pd.dst_desc())}};
        if (p.layer) args[DNNL_ARG_BIAS] = random_memory(pd.bias_desc());
        products_.emplace_back(dnnl::matmul(pd), std::move(args));
    }
    memory random_memory(const memory::desc& md) {
        memory m(md, engine_);
        fill_random(static_cast<float*>(m.get_data_handle()), md.get_size() / sizeof(float), ++seed_, 0.1f);
        return m;
    }

    dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream_{engine_};
    unsigned seed_ = 100;
    std::vector<std::pair<dnnl::matmul, std::unordered_map<int, memory>>> products_;
};

// ---- the engine's ops -------------------------------------------------------------

// Some of the engine's ops, run as a Forward runs them (ops/schedule.hpp).
class EngineOp {
public:
    virtual ~EngineOp() = default;
    // Once built: the threads' memory, sized for every op.
    void bind(const dnnl::engine& engine, int threads) {
        std::size_t scratchpad = 0, workspace = 0;
        for (onevit::Op* op : ops_) {
            scratchpad = std::max(scratchpad, op->scratchpad_bytes());
            workspace = std::max(workspace, op->workspace_bytes());
        }
        memory_ = ThreadMemory(engine, threads, scratchpad, workspace);
        for (onevit::Op* op : ops_) op->bind(memory_);
    }
    // Inside Executor::run.
    virtual void run(Executor& executor) = 0;

protected:
    std::vector<onevit::Op*> ops_;
    ThreadMemory memory_;
};

// A [out, in] weight (scaled so activations stay O(1)) and [out] bias, as a model file holds them.
struct RandomLinear {
    AlignedBuffer weight, bias;
    TensorView weight_view, bias_view;
    RandomLinear(int out, int in, unsigned seed)
        : weight(random_buffer(std::size_t(out) * in, seed, 1.f / std::sqrt(float(in)))),
          bias(random_buffer(out, seed + 1)),
          weight_view{{out, in}, weight.data()},
          bias_view{{out}, bias.data()} {}
};

// The patch embedding (each row tile cuts its patches out of the NCHW input,
// then multiplies them by the embedding): the engine's cost of turning images
// into patch embeddings.
class PatchEmbedOp : public EngineOp {
public:
    PatchEmbedOp(Executor& executor, const VitShape& s, int batch)
        : params_(s.dim, kPatchDim, 1),
          images_(random_buffer(std::size_t(batch) * kChannels * kImage * kImage, 3)),
          out_(std::size_t(batch) * kPatches * s.dim),
          weights_(executor, weight_memory_, PatchGrid{kChannels, kImage, kImage, kPatch},
                   TensorView{{s.dim, kChannels, kPatch, kPatch}, params_.weight.data()}, &params_.bias_view,
                   executor.threads()),
          embedding_(weights_, executor.engine(), executor.threads(), batch, out_.data()) {
        embedding_.extract->set_input(images_.data());
        ops_ = {embedding_.extract.get(), embedding_.linear.get()};
    }
    void run(Executor& executor) override { Schedule(executor, memory_).run(ops_); }

private:
    RandomLinear params_;  // the convolution's [dim, C·P·P] weight is a linear layer's
    AlignedBuffer images_, out_;
    WeightMemory weight_memory_;
    PatchEmbedWeights weights_;
    PatchEmbedding embedding_;  // refers to weights_
};

// Half a transformer block, x += second(middle(first(LN(x)))): for attention, first
// is qkv, middle the attention core, second proj; for the MLP, first is fc1 with
// GELU, no middle, second fc2. Layer sizes and epilogues are the model's.
class BlockHalfOp : public EngineOp {
public:
    BlockHalfOp(Executor& executor, const VitShape& s, int batch, Part op)
        : rows_(batch * kTokens),
          attention_shape_{batch, kTokens, s.heads(), kHeadDim, 1.f / std::sqrt(float(kHeadDim))},
          first_width_(op == Part::attention ? 3 * s.dim : s.mlp),
          second_in_(op == Part::attention ? s.dim : s.mlp),
          x_(random_buffer(std::size_t(rows_) * s.dim, 4)),
          h_(std::size_t(rows_) * s.dim),
          first_out_(std::size_t(rows_) * first_width_),
          middle_out_(op == Part::attention ? std::size_t(rows_) * s.dim : 0),
          norm_scale_(random_buffer(s.dim, 5)),
          norm_shift_(random_buffer(s.dim, 6)),
          first_params_(first_width_, s.dim, 7),
          second_params_(s.dim, second_in_, 9),
          // Tuned for one image's rows at every batch size, as the model's weights are.
          first_weights_(executor, weight_memory_, first_params_.weight_view, &first_params_.bias_view,
                         op == Part::attention ? Epilogue::none : Epilogue::gelu_erf, {kTokens, executor.threads()}),
          second_weights_(executor, weight_memory_, second_params_.weight_view, &second_params_.bias_view,
                          Epilogue::residual_add, {kTokens, executor.threads()}) {
        const dnnl::engine& engine = executor.engine();
        norm_ = make_norm("norm", engine, executor.threads(), rows_,
                          {Norm::layer, s.dim, kNormEps, norm_scale_.data(), norm_shift_.data()}, x_.data(), h_.data());
        first_ = make_linear("first", first_weights_, engine, rows_, h_.data(), first_out_.data());
        if (op == Part::attention)
            attention_ = std::make_unique<Attention>(engine, executor.threads(), attention_shape_, first_out_.data(),
                                                     middle_out_.data());
        second_ = make_linear("second", second_weights_, engine, rows_,
                              op == Part::attention ? middle_out_.data() : first_out_.data(), x_.data());
        ops_ = {norm_.get(), first_.get()};
        if (attention_) ops_.push_back(attention_.get());
        ops_.push_back(second_.get());
    }
    void run(Executor& executor) override {
        Schedule schedule(executor, memory_);
        for (onevit::Op* op : ops_) schedule.run({op});
    }

private:
    int rows_;
    AttentionShape attention_shape_;
    int first_width_, second_in_;
    AlignedBuffer x_, h_, first_out_, middle_out_;
    AlignedBuffer norm_scale_, norm_shift_;
    RandomLinear first_params_, second_params_;
    WeightMemory weight_memory_;
    LinearWeights first_weights_;
    LinearWeights second_weights_;
    std::unique_ptr<onevit::Op> norm_, first_, attention_, second_;
};

// ---- benchmarks -------------------------------------------------------------------

struct Case {
    Part op;
    VitShape shape;
    // The onednn row's seconds per iteration, by "<op>/<model>/batch/threads": the
    // onevit row, registered right after it, divides by it.
    std::string key(int batch, int threads) const {
        return std::string(op_name(op)) + "/" + shape.name + "/" + std::to_string(batch) + "/" +
               std::to_string(threads);
    }
};
std::map<std::string, double> onednn_seconds;

// Times run() and sets the counters; returns seconds per iteration.
double time_loop(benchmark::State& state, const Case& c, int batch, const std::function<void()>& run) {
    run();  // first-run costs (page faults, caches of jit kernels) stay out of the timing
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) run();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double iterations = static_cast<double>(state.iterations());
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["GFLOPS"] =
        benchmark::Counter(flops(c.op, c.shape, batch) * 1e-9 * iterations, benchmark::Counter::kIsRate);
    return seconds / iterations;
}

void onednn_alone(benchmark::State& state, const Case& c) {
    const int batch = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
    const OpenMPThreads team(threads);  // this thread is outside any arena: a full team
    OneDnnProducts reference(products(c.op, c.shape, batch));
    onednn_seconds[c.key(batch, threads)] = time_loop(state, c, batch, [&] { reference.run(); });
}

void onevit_op(benchmark::State& state, const Case& c) {
    const int batch = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
    const dnnl::engine cpu(dnnl::engine::kind::cpu, 0);
    Executor executor(cpu, threads);
    std::unique_ptr<EngineOp> op;
    executor.run([&] {  // primitives are created inside the arena (Executor::require_inside_run)
        if (c.op == Part::patch_embed)
            op = std::make_unique<PatchEmbedOp>(executor, c.shape, batch);
        else
            op = std::make_unique<BlockHalfOp>(executor, c.shape, batch, c.op);
    });
    op->bind(cpu, executor.threads());
    const double seconds = time_loop(state, c, batch, [&] { executor.run([&] { op->run(executor); }); });
    const auto reference = onednn_seconds.find(c.key(batch, threads));
    if (reference != onednn_seconds.end()) state.counters["vs_onednn"] = seconds / reference->second;
}

// Takes --threads=N out of argv (Google Benchmark has already taken its own flags).
int take_threads_flag(int& argc, char** argv) {
    int threads = 0, kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--threads=", 0) != 0) {
            argv[kept++] = argv[i];
            continue;
        }
        char* end = nullptr;
        const long value = std::strtol(arg.c_str() + 10, &end, 10);
        if (end == arg.c_str() + 10 || *end != '\0' || value < 0 || value > 4096) {
            std::fprintf(stderr, "bench_ops: --threads: bad value '%s' (an integer >= 0)\n", arg.c_str() + 10);
            std::exit(2);
        }
        threads = static_cast<int>(value);
    }
    argc = kept;
    return threads > 0 ? threads : tbb::info::default_concurrency();
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    const int threads = take_threads_flag(argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

    // Each onednn row directly before its onevit row: the pair runs close in time,
    // so clock drift on this shared machine touches both alike.
    for (const VitShape& shape : kModels)
        for (Part op : {Part::patch_embed, Part::attention, Part::mlp})
            for (int batch : {1, 8})
                for (const char* impl : {"onednn", "onevit"}) {
                    const std::string name = std::string(op_name(op)) + "/" + shape.name + "/" + impl;
                    const bool alone = impl == std::string("onednn");
                    benchmark::RegisterBenchmark(name.c_str(), alone ? onednn_alone : onevit_op, Case{op, shape})
                        ->ArgNames({"batch", "threads"})
                        ->Args({batch, threads})
                        ->UseRealTime()
                        ->Unit(benchmark::kMicrosecond);
                }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
