#include "onevit/model_info.hpp"

#include "format/enum_names.hpp"

namespace onevit {

const char* to_string(Precision p) { return name_of(kPrecisionNames, p); }
const char* to_string(Gelu g) { return name_of(kGeluNames, g); }
const char* to_string(Pool p) { return name_of(kPoolNames, p); }
const char* to_string(Head h) { return name_of(kHeadNames, h); }
const char* to_string(PoolProjAct a) { return name_of(kPoolProjActNames, a); }
const char* to_string(Norm n) { return name_of(kNormNames, n); }
const char* to_string(Block b) { return name_of(kBlockNames, b); }
const char* to_string(Mlp m) { return name_of(kMlpNames, m); }
const char* to_string(Rope r) { return name_of(kRopeNames, r); }
const char* to_string(Resize r) { return name_of(kResizeNames, r); }
const char* to_string(Interpolation i) { return name_of(kInterpolationNames, i); }

}  // namespace onevit
