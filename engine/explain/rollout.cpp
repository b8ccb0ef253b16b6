#include "onevit/rollout.hpp"

#include <algorithm>
#include <cstddef>
#include <string>

#include "onevit/error.hpp"

namespace onevit {

namespace {

void check(const AttentionMaps& maps, int image, const Architecture& arch) {
    // Token 0 of a model without one is a register or a patch: its row is no rollout.
    if (!arch.class_token) throw Error("attention rollout: the model has no class token, whose attention it follows");
    if (maps.depth != arch.depth || maps.heads != arch.heads || maps.tokens != arch.tokens())
        throw Error("attention rollout: the attention maps (depth " + std::to_string(maps.depth) + ", heads " +
                    std::to_string(maps.heads) + ", tokens " + std::to_string(maps.tokens) +
                    ") are not this model's (depth " + std::to_string(arch.depth) + ", heads " +
                    std::to_string(arch.heads) + ", tokens " + std::to_string(arch.tokens()) + ")");
    const std::size_t per_image = std::size_t(maps.depth) * maps.heads * maps.tokens * maps.tokens;
    if (per_image == 0 || maps.probs.size() % per_image != 0)
        throw Error("attention rollout: " + std::to_string(maps.probs.size()) +
                    " probabilities are not a whole number of images");
    const std::size_t images = maps.probs.size() / per_image;
    if (image < 0 || std::size_t(image) >= images)
        throw Error("attention rollout: image " + std::to_string(image) + " of " + std::to_string(images));
}

}  // namespace

std::vector<float> attention_rollout(const AttentionMaps& maps, int image, const Architecture& arch) {
    check(maps, image, arch);
    const std::size_t T = maps.tokens, H = maps.heads;
    const float* image_probs = maps.probs.data() + std::size_t(image) * maps.depth * H * T * T;

    // Only the class token's row of the product is wanted: carry that row
    // vector through the blocks, last to first (row · Âₗ), instead of
    // multiplying T × T matrices.
    std::vector<double> row(T, 0.0), next(T);
    row[0] = 1.0;
    std::vector<double> mixed(T);  // one row of Âₗ
    for (int layer = maps.depth - 1; layer >= 0; --layer) {
        const float* block = image_probs + std::size_t(layer) * H * T * T;
        std::fill(next.begin(), next.end(), 0.0);
        for (std::size_t i = 0; i < T; ++i) {
            if (row[i] == 0.0) continue;
            std::fill(mixed.begin(), mixed.end(), 0.0);
            for (std::size_t h = 0; h < H; ++h) {
                const float* probs = block + (h * T + i) * T;
                for (std::size_t j = 0; j < T; ++j) mixed[j] += probs[j];
            }
            double sum = 0;
            for (std::size_t j = 0; j < T; ++j) sum += mixed[j] = mixed[j] / double(H) + (i == j ? 1.0 : 0.0);
            const double weight = row[i] / sum;
            for (std::size_t j = 0; j < T; ++j) next[j] += weight * mixed[j];
        }
        row.swap(next);
    }

    const std::size_t prefix = arch.prefix_tokens;
    double patch_sum = 0;
    for (std::size_t j = prefix; j < T; ++j) patch_sum += row[j];
    if (!(patch_sum > 0)) throw Error("attention rollout: the class token attends to no patch (non-finite attention?)");
    std::vector<float> grid(T - prefix);
    for (std::size_t j = prefix; j < T; ++j) grid[j - prefix] = float(row[j] / patch_sum);
    return grid;
}

}  // namespace onevit
