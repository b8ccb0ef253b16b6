// Never a reference kernel (ops/kernel_check.hpp): plans — creation only, no
// weights, no timing — for every family size, patch and image size, batch,
// thread count and precision the engine has, checking every primitive
// descriptor each would create.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/executor.hpp"
#include "model/forward_plan.hpp"
#include "ops/kernel_check.hpp"
#include "model/thread_plan.hpp"

namespace onevit {
namespace {

struct Family {
    const char* name;
    int dim, depth, heads;
};

Architecture vit(const Family& f, int patch, int image) {
    Architecture a;
    a.family = f.name;
    a.image_height = a.image_width = image;
    a.channels = 3;
    a.patch_size = patch;
    a.dim = f.dim;
    a.depth = f.depth;
    a.heads = f.heads;
    a.head_dim = f.dim / f.heads;
    a.mlp_dim = 4 * f.dim;
    a.num_classes = 1000;
    a.prefix_tokens = 1;
    a.norm_eps = 1e-6f;
    a.attn_scale = 1.f / 8;
    return a;
}

// A descriptor as checked() reads one: its implementation's name and source.
struct NamedDesc {
    std::string impl;
    dnnl::memory::desc src;
    const char* impl_info_str() const { return impl.c_str(); }
    dnnl::memory::desc src_desc() const { return src; }
};

// A reference kernel is refused, named with the op and its source, whatever
// shapes fall to one on this CPU and oneDNN version; other kernels pass.
TEST(KernelCheck, RefusesReferenceKernelsByName) {
    using dnnl::memory;
    const memory::desc src({4, 3, 64, 224}, memory::data_type::f32, memory::format_tag::nhwc);
    for (const char* impl : {"ref:any", "ref_int8:any", "ref_fused_convolution:any"}) {
        try {
            checked(NamedDesc{impl, src}, "convolution");
            ADD_FAILURE() << impl << " was not refused";
        } catch (const ReferenceKernel& e) {
            const std::string message = e.what();
            for (const char* part : {impl, "convolution", "4x3x64x224"})
                EXPECT_NE(message.find(part), std::string::npos) << message;
        }
    }
    // simple_layer_normalization: 2.6's jit layer norm; simple:any: its specialised reorders.
    for (const char* impl : {"brg:avx512_core", "gemm:jit", "jit:avx2", "simple_layer_normalization:any", "simple:any"})
        EXPECT_NO_THROW(checked(NamedDesc{impl, src}, "convolution")) << impl;
}

// On oneDNN's own descriptors: every implementation it lists for a matmul is
// refused exactly when it is a reference one, and its first choice for a plain
// f32 matmul (a jit gemm on any x86-64 CPU) passes.
TEST(KernelCheck, OneDnnsImplementationsAreCheckedByTheirNames) {
    using dnnl::memory;
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const memory::desc a({2, 64, 96}, memory::data_type::f32, memory::format_tag::abc);
    const memory::desc b({2, 96, 128}, memory::data_type::f32, memory::format_tag::acb);
    const memory::desc c({2, 64, 128}, memory::data_type::f32, memory::format_tag::bac);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), engine);
    EXPECT_FALSE(is_reference_kernel(pd.impl_info_str())) << pd.impl_info_str();
    do {
        if (is_reference_kernel(pd.impl_info_str()))
            EXPECT_THROW(checked(pd, "matmul"), ReferenceKernel) << pd.impl_info_str();
        else
            EXPECT_NO_THROW(checked(pd, "matmul")) << pd.impl_info_str();
    } while (pd.next_impl());
}

TEST(PlanSweep, NoReferenceKernelAnywhere) {
    const Family families[] = {
        {"ViT-Ti", 192, 12, 3}, {"ViT-S", 384, 12, 6}, {"ViT-B", 768, 12, 12}, {"ViT-L", 1024, 24, 16}};
    const int batches[] = {1, 2, 3, 8, 17};
    const int thread_counts[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const long checked_before = kernels_checked(), fallbacks_before = reference_fallbacks();
    int plans = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int threads : thread_counts) {
        Executor executor(engine, threads);  // a 64-thread arena is fine on 2 cores: nothing runs on it
        for (Precision precision : planned_precisions())
            for (const Family& family : families)
                for (int patch : {16, 32})
                    for (int image : {224, 384})
                        for (int batch : batches) {
                            const std::string what = std::string(family.name) + "/" + std::to_string(patch) + " at " +
                                                     std::to_string(image) + ", batch " + std::to_string(batch) + ", " +
                                                     std::to_string(threads) + " threads, " + to_string(precision);
                            const long checked_here = kernels_checked();
                            executor.run([&] {
                                try {
                                    plan_forward(vit(family, patch, image), precision, engine, threads, batch);
                                } catch (const ReferenceKernel& e) {
                                    ADD_FAILURE() << what << ": " << e.what();
                                }
                            });
                            // A plan that checks nothing would pass this sweep vacuously.
                            EXPECT_GT(kernels_checked(), checked_here) << what << ": no descriptor checked";
                            ++plans;
                        }
    }
    const long checked = kernels_checked() - checked_before;
    EXPECT_EQ(reference_fallbacks() - fallbacks_before, 0) << "a planner's first choice had a reference kernel";
    std::printf("plan sweep: %d plans, %ld primitive descriptors checked, %.1f s\n", plans, checked,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// The 2025-26 layers (issue 20) as the zoo combines them: what the plan of each
// creates differs from the classic block's (SwiGLU's doubled fc1, f32 fc1 output
// before the hidden op, LayerNorm on the attention output and on each patch,
// post-norm's accumulating norms, attention pooling's own heads and width).
struct Modern {
    const char* name;
    void (*apply)(Architecture&);
};

const Modern modern_layouts[] = {
    {"DINOv3 (rope half, registers, SwiGLU)",
     [](Architecture& a) {
         a.features = {"no_pos_embed", "rope", "swiglu"};
         a.pos_embed = false, a.rope = Rope::half, a.prefix_tokens = 5, a.mlp = Mlp::swiglu;
         a.mlp_dim = a.dim * 8 / 3;
     }},
    {"EVA-02 CLIP (rope interleaved, attn/mlp norm, SwiGLU)",
     [](Architecture& a) {
         a.features = {"rope", "attn_norm", "swiglu", "mlp_norm"};
         a.rope = Rope::interleaved, a.attn_norm = a.mlp_norm = true, a.mlp = Mlp::swiglu;
     }},
    {"mixed RoPE (a table per block)",
     [](Architecture& a) {
         a.features = {"no_pos_embed", "rope"};
         a.pos_embed = false, a.rope = Rope::interleaved, a.rope_per_block = true;
     }},
    {"parallel scaling (RMSNorm, q/k norm)",
     [](Architecture& a) {
         a.features = {"rms_norm", "qk_norm", "parallel"};
         a.norm = Norm::rms, a.qk_norm = true, a.block = Block::parallel;
     }},
    {"residual post-norm, relative-position bias",
     [](Architecture& a) {
         a.features = {"post_norm", "rel_pos_bias"};
         a.block = Block::post_norm, a.rel_pos_bias = true;
     }},
    {"AIMv2 (RMSNorm, embed norm, SwiGLU, no qkv bias)",
     [](Architecture& a) {
         a.features = {"rms_norm", "embed_norm", "swiglu"};
         a.norm = Norm::rms, a.embed_norm = true, a.mlp = Mlp::swiglu, a.qkv_bias = false;
     }},
    {"PE core (embed norm, attention pool of its own shape)",
     [](Architecture& a) {
         a.features = {"embed_norm", "rope", "attn_pool_shape"};
         a.embed_norm = true, a.rope = Rope::half, a.pool = Pool::map, a.pool_heads = 8;
         a.pool_mlp_dim = 2 * a.dim, a.pool_prefix = true, a.num_classes = 0, a.head = Head::none;
     }},
};

TEST(PlanSweep, NoReferenceKernelInTheModernLayers) {
    const Family families[] = {{"ViT-S", 384, 12, 6}, {"ViT-B", 768, 12, 12}};
    const int thread_counts[] = {1, 2, 3, 4, 8, 16, 64};
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const long fallbacks_before = reference_fallbacks();
    for (int threads : thread_counts) {
        Executor executor(engine, threads);
        for (Precision precision : planned_precisions())
            for (const Family& family : families)
                for (const Modern& layout : modern_layouts)
                    for (int batch : {1, 3, 8}) {
                        Architecture a = vit(family, 16, 224);
                        layout.apply(a);
                        const std::string what = std::string(family.name) + " " + layout.name + ", batch " +
                                                 std::to_string(batch) + ", " + std::to_string(threads) + " threads, " +
                                                 to_string(precision);
                        const long checked_here = kernels_checked();
                        executor.run([&] {
                            try {
                                plan_forward(a, precision, engine, threads, batch);
                            } catch (const ReferenceKernel& e) {
                                ADD_FAILURE() << what << ": " << e.what();
                            }
                        });
                        // A plan that checks nothing would pass this sweep vacuously.
                        EXPECT_GT(kernels_checked(), checked_here) << what << ": no descriptor checked";
                    }
    }
    EXPECT_EQ(reference_fallbacks() - fallbacks_before, 0) << "a planner's first choice had a reference kernel";
}

// threads = 0: the thread plan's contract, checked by brute force over the
// cost model (model/thread_plan.hpp) at every machine size of the sweep.
TEST(ThreadPlan, LatencyTakesTheFewestThreadsWithinHalfAPercentOfTheBest) {
    for (const Family& family : {Family{"ViT-Ti", 192, 12, 3}, Family{"ViT-B", 768, 12, 12}})
        for (int batch : {1, 8})
            for (int cores : {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}) {
                const Architecture a = vit(family, 16, 224);
                double best = 1e30;
                for (int t = 1; t <= cores; ++t) best = std::min(best, modelled_latency_ms(a, batch, t));
                const ThreadPlan plan = choose_thread_plan(a, batch, Hint::latency, cores);
                EXPECT_EQ(plan.streams, 1);
                EXPECT_LE(plan.modelled_ms, best * 1.005);
                for (int t = 1; t < plan.threads_per_stream; ++t)
                    EXPECT_GT(modelled_latency_ms(a, batch, t), best * 1.005) << family.name << " " << t;
            }
}

// Streams keep activations of their own, which the cost model does not see:
// more streams only where they model more than 2 % faster.
TEST(ThreadPlan, ThroughputTakesTheFewestStreamsWithinTwoPercentOfTheBest) {
    for (const Family& family : {Family{"ViT-Ti", 192, 12, 3}, Family{"ViT-B", 768, 12, 12}})
        for (int batch : {1, 8})
            for (int cores : {1, 2, 3, 4, 8, 16, 64}) {
                const Architecture a = vit(family, 16, 224);
                const auto images_per_s = [&](int t) { return (cores / t) * batch / modelled_latency_ms(a, batch, t); };
                double best = 0;
                for (int t = 1; t <= cores; ++t) best = std::max(best, images_per_s(t));
                const ThreadPlan plan = choose_thread_plan(a, batch, Hint::throughput, cores);
                const std::string what = std::string(family.name) + " batch " + std::to_string(batch) + ", " +
                                         std::to_string(cores) + " cores";
                EXPECT_EQ(plan.streams, cores / plan.threads_per_stream) << what;
                EXPECT_GE(images_per_s(plan.threads_per_stream), best * 0.98) << what;
                for (int t = plan.threads_per_stream + 1; t <= cores; ++t) {
                    if (cores / t < plan.streams) {
                        EXPECT_LT(images_per_s(t), best * 0.98) << what << ", " << t;
                    }
                }
            }
    // ViT-Ti at batch 8 on 2 cores: two 1-thread streams model 0.5 % ahead of one 2-thread stream.
    EXPECT_EQ(choose_thread_plan(vit({"ViT-Ti", 192, 12, 3}, 16, 224), 8, Hint::throughput, 2).streams, 1);
}

TEST(ThreadPlan, ThroughputFillsTheCoresAndExplicitStreamsWin) {
    const Architecture a = vit({"ViT-S", 384, 12, 6}, 16, 224);
    for (int cores : {2, 16, 64}) {
        const ThreadPlan plan = choose_thread_plan(a, 1, Hint::throughput, cores);
        EXPECT_LE(plan.streams * plan.threads_per_stream, cores);
        EXPECT_GT(plan.streams * plan.threads_per_stream, cores / 2);
        const ThreadPlan fixed = choose_thread_plan(a, 1, Hint::throughput, cores, 2);
        EXPECT_EQ(fixed.streams, 2);
        EXPECT_EQ(fixed.threads_per_stream, cores / 2);
    }
    EXPECT_THROW(choose_thread_plan(a, 1, Hint::latency, 2, 3), Error);
}

}  // namespace
}  // namespace onevit
