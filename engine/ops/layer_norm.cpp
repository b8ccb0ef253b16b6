#include "ops/layer_norm.hpp"

#include <map>

namespace onevit {

LayerNormSteps::LayerNormSteps(const dnnl::engine& engine, int threads, int rows, int dim, float eps,
                               const float* scale, const float* shift, float* src, float* dst) {
    using dnnl::memory;
    using dnnl::layer_normalization_forward;
    const memory scale_mem(strided_md({dim}, {1}), engine, const_cast<float*>(scale));
    const memory shift_mem(strided_md({dim}, {1}), engine, const_cast<float*>(shift));
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    std::map<int, layer_normalization_forward::primitive_desc> pds;  // by tile rows
    // Normalisation is memory-bound and cheap: one tile per thread balances it.
    for (Range r : split_evenly(rows, std::min(rows, threads))) {
        auto pd = pds.find(r.size);
        if (pd == pds.end()) {
            const memory::desc md = strided_md({r.size, dim}, {dim, 1});
            const layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, md, eps, flags);
            pd = pds.emplace(r.size, layer_normalization_forward::primitive_desc(desc, user_scratchpad_attr(), engine))
                     .first;
        }
        Step step{layer_normalization_forward(pd->second), {}};
        step.args[DNNL_ARG_SRC] = memory(pd->second.src_desc(), engine, src + std::int64_t(r.begin) * dim);
        step.args[DNNL_ARG_DST] = memory(pd->second.dst_desc(), engine, dst + std::int64_t(r.begin) * dim);
        step.args[DNNL_ARG_SCALE] = scale_mem;
        step.args[DNNL_ARG_SHIFT] = shift_mem;
        add_row_tile(std::move(step), pd->second.scratchpad_desc(), r);
    }
}

}  // namespace onevit
