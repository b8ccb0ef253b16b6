#include "onevit/model_info.hpp"

namespace onevit {

const char* to_string(Gelu g) {
    switch (g) {
        case Gelu::erf: return "erf";
        case Gelu::tanh: return "tanh";
        case Gelu::quick: return "quick";
    }
    return "?";
}
const char* to_string(Pool p) {
    switch (p) {
        case Pool::token: return "token";
        case Pool::mean: return "mean";
        case Pool::mean_patches: return "mean_patches";
        case Pool::map: return "map";
        case Pool::token_and_mean_patches: return "token_and_mean_patches";
    }
    return "?";
}
const char* to_string(Head h) {
    switch (h) {
        case Head::linear: return "linear";
        case Head::distilled: return "distilled";
        case Head::mlp: return "mlp";
        case Head::none: return "none";
    }
    return "?";
}
const char* to_string(PoolProjAct a) {
    switch (a) {
        case PoolProjAct::none: return "none";
        case PoolProjAct::tanh: return "tanh";
    }
    return "?";
}
const char* to_string(Resize r) {
    switch (r) {
        case Resize::shorter_then_crop: return "shorter_then_crop";
        case Resize::direct: return "direct";
        case Resize::squash_then_crop: return "squash_then_crop";
    }
    return "?";
}
const char* to_string(Interpolation i) {
    switch (i) {
        case Interpolation::nearest: return "nearest";
        case Interpolation::bilinear: return "bilinear";
        case Interpolation::bicubic: return "bicubic";
    }
    return "?";
}

}  // namespace onevit
