// The names the model file (weights/FORMAT.md) gives each choice of the
// architecture and preprocessing: one table per enum, which both the reader
// and to_string() use.
#pragma once

#include <string>

#include "onevit/model_info.hpp"

namespace onevit {

template <class Enum>
struct EnumName {
    const char* name;
    Enum value;
};

inline constexpr EnumName<Precision> kPrecisionNames[] = {
    {"f32", Precision::f32}, {"bf16", Precision::bf16}, {"int8", Precision::int8}};
inline constexpr EnumName<Gelu> kGeluNames[] = {{"erf", Gelu::erf}, {"tanh", Gelu::tanh}, {"quick", Gelu::quick}};
inline constexpr EnumName<Pool> kPoolNames[] = {{"token", Pool::token},
                                                {"mean", Pool::mean},
                                                {"mean_patches", Pool::mean_patches},
                                                {"map", Pool::map},
                                                {"token_and_mean_patches", Pool::token_and_mean_patches}};
inline constexpr EnumName<PoolProjAct> kPoolProjActNames[] = {{"none", PoolProjAct::none}, {"tanh", PoolProjAct::tanh}};
inline constexpr EnumName<Head> kHeadNames[] = {
    {"linear", Head::linear}, {"distilled", Head::distilled}, {"mlp", Head::mlp}, {"none", Head::none}};
inline constexpr EnumName<Norm> kNormNames[] = {{"layer", Norm::layer}, {"rms", Norm::rms}};
inline constexpr EnumName<Block> kBlockNames[] = {
    {"pre_norm", Block::pre_norm}, {"post_norm", Block::post_norm}, {"parallel", Block::parallel}};
inline constexpr EnumName<Mlp> kMlpNames[] = {{"gelu", Mlp::gelu}, {"swiglu", Mlp::swiglu}};
inline constexpr EnumName<Rope> kRopeNames[] = {
    {"none", Rope::none}, {"interleaved", Rope::interleaved}, {"half", Rope::half}};
inline constexpr EnumName<Resize> kResizeNames[] = {{"shorter_then_crop", Resize::shorter_then_crop},
                                                    {"direct", Resize::direct},
                                                    {"squash_then_crop", Resize::squash_then_crop}};
inline constexpr EnumName<Interpolation> kInterpolationNames[] = {
    {"nearest", Interpolation::nearest}, {"bilinear", Interpolation::bilinear}, {"bicubic", Interpolation::bicubic}};

template <class Enum, std::size_t N>
const char* name_of(const EnumName<Enum> (&names)[N], Enum value) {
    for (const auto& n : names)
        if (n.value == value) return n.name;
    return "?";
}

// "a, b, c": the choices, for messages.
template <class Enum, std::size_t N>
std::string choices_of(const EnumName<Enum> (&names)[N]) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + std::string(n.name);
    return s;
}

}  // namespace onevit
