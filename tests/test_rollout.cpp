// Attention rollout on attention maps small enough to roll out by hand; the
// numerics on real models are checked against PyTorch in explain_test.py.
#include <gtest/gtest.h>

#include <vector>

#include "onevit/error.hpp"
#include "onevit/rollout.hpp"

namespace onevit {
namespace {

// A 2 × 2 patch grid (patch size 1) after `prefix` prefix tokens.
Architecture tiny_arch(int depth, int heads, int prefix) {
    Architecture a;
    a.image_height = a.image_width = 2;
    a.patch_size = 1;
    a.depth = depth;
    a.heads = heads;
    a.prefix_tokens = prefix;
    return a;
}

// Attention maps in which every query attends to itself only; set() changes one row.
struct Maps {
    AttentionMaps maps;
    Maps(const Architecture& a, int images) {
        maps = {a.depth, a.heads, a.tokens(), {}};
        const int T = a.tokens();
        maps.probs.assign(std::size_t(images) * a.depth * a.heads * T * T, 0.f);
        for (int i = 0; i < images * a.depth * a.heads; ++i)
            for (int q = 0; q < T; ++q) maps.probs[(std::size_t(i) * T + q) * T + q] = 1.f;
    }
    void set(int image, int block, int head, int query, std::vector<float> row) {
        const int T = maps.tokens;
        const std::size_t at = ((std::size_t(image) * maps.depth + block) * maps.heads + head) * T + query;
        std::copy(row.begin(), row.end(), maps.probs.begin() + at * T);
    }
};

TEST(Rollout, AveragesHeadsAddsTheIdentityAndMultipliesLastBlockFirst) {
    const Architecture a = tiny_arch(2, 2, 1);  // tokens: class, patches 0..3
    Maps m(a, 1);
    // Last block: the class token reads patch 0 (head 0) and patch 1 (head 1):
    // Â₁ row 0 = (e0 + ½e1 + ½e2) / 2.
    m.set(0, 1, 0, 0, {0, 1, 0, 0, 0});
    m.set(0, 1, 1, 0, {0, 0, 1, 0, 0});
    // First block: patch 0 reads patch 3 in both heads: Â₀ row 1 = ½e1 + ½e4;
    // patch 1 and the class token read themselves: Â₀ rows 0, 2 = e0, e2.
    m.set(0, 0, 0, 1, {0, 0, 0, 0, 1});
    m.set(0, 0, 1, 1, {0, 0, 0, 0, 1});
    // Row 0 of Â₁Â₀ = ½e0 + ¼(½e1 + ½e4) + ¼e2 → patches (⅛, ¼, 0, ⅛) → / ½.
    const std::vector<float> map = attention_rollout(m.maps, 0, a);
    const std::vector<float> expected = {0.25f, 0.5f, 0.f, 0.25f};
    ASSERT_EQ(map.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(map[i], expected[i], 1e-6) << "patch " << i;
}

TEST(Rollout, DistilledModelsRollOutTheClassTokenAndLeaveOutTheDistillationToken) {
    const Architecture a = tiny_arch(1, 1, 2);  // tokens: class, distillation, patches 0..3
    Maps m(a, 2);
    m.set(1, 0, 0, 0, {0, 0.5f, 0, 0.5f, 0, 0});  // image 1: class token → distillation token and patch 1
    m.set(1, 0, 0, 1, {0, 0, 0, 0, 0, 1});        // the distillation token's own row does not count
    const std::vector<float> map = attention_rollout(m.maps, 1, a);
    const std::vector<float> expected = {0.f, 1.f, 0.f, 0.f};
    ASSERT_EQ(map.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(map[i], expected[i], 1e-6) << "patch " << i;
}

TEST(Rollout, RefusesMapsThatAreNotTheModelsAndImagesOutOfRange) {
    const Architecture a = tiny_arch(2, 2, 1);
    Maps m(a, 1);
    EXPECT_THROW(attention_rollout(m.maps, 1, a), Error);
    EXPECT_THROW(attention_rollout(m.maps, -1, a), Error);
    EXPECT_THROW(attention_rollout(m.maps, 0, tiny_arch(3, 2, 1)), Error);
    EXPECT_THROW(attention_rollout(m.maps, 0, tiny_arch(2, 2, 2)), Error);
    m.maps.probs.pop_back();
    EXPECT_THROW(attention_rollout(m.maps, 0, a), Error);
    EXPECT_THROW(attention_rollout(AttentionMaps{}, 0, a), Error);
}

}  // namespace
}  // namespace onevit
