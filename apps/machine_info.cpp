#include "machine_info.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <fmt/format.h>

#include <fstream>

namespace onevit::cli {

std::string cpu_model() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) != 0) continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        const std::size_t begin = line.find_first_not_of(" \t", colon + 1);
        return begin == std::string::npos ? "unknown" : line.substr(begin);
    }
    return "unknown";
}

std::string cpu_isa() {
    using isa = dnnl::cpu_isa;
    switch (dnnl::get_effective_cpu_isa()) {
        case isa::sse41:
            return "sse41";
        case isa::avx:
            return "avx";
        case isa::avx2:
            return "avx2";
        case isa::avx2_vnni:
            return "avx2_vnni";
        case isa::avx512_mic:
            return "avx512_mic";
        case isa::avx512_mic_4ops:
            return "avx512_mic_4ops";
        case isa::avx512_core:
            return "avx512_core";
        case isa::avx512_core_vnni:
            return "avx512_core_vnni";
        case isa::avx512_core_bf16:
            return "avx512_core_bf16";
        case isa::avx512_core_amx:
            return "avx512_core_amx";
        default:
            return fmt::format("oneDNN cpu_isa {:#x}", static_cast<unsigned>(dnnl::get_effective_cpu_isa()));
    }
}

std::string onednn_version() {
    const dnnl_version_t* v = dnnl_version();
    const std::string hash = v->hash ? v->hash : "";
    return fmt::format("{}.{}.{}{}", v->major, v->minor, v->patch,
                       hash.empty() || hash == "N/A" ? "" : " (" + hash + ")");
}

}  // namespace onevit::cli
