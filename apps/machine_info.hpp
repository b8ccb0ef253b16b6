// What a benchmark report says of the machine and the software it ran on.
#pragma once

#include <string>

namespace onevit::cli {

// /proc/cpuinfo's "model name" ("unknown" where there is none).
std::string cpu_model();
// The instruction set oneDNN's kernels use here, as oneDNN names it ("avx512_core_vnni").
std::string cpu_isa();
// oneDNN's version, "2.6.3" (and its git hash where the build has one).
std::string onednn_version();

}  // namespace onevit::cli
