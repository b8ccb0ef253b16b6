#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/model.hpp"

namespace onevit {

Precision fastest_native_precision() {
    using isa = dnnl::cpu_isa;
    const auto has = [](isa features) {
        return (static_cast<int>(dnnl::get_effective_cpu_isa()) & static_cast<int>(features)) ==
               static_cast<int>(features);
    };
    // VNNI multiplies u8/s8 pairs into s32 at 4x the f32 rate; every CPU with
    // AVX512_BF16 (or AMX) has it too, so int8 is the fastest wherever bf16 is.
    if (has(isa::avx512_core_vnni) || has(isa::avx2_vnni)) return Precision::int8;
    return Precision::f32;
}

}  // namespace onevit
