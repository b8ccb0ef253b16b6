#include "heatmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "bitmap_font.hpp"
#include "onevit/error.hpp"

namespace onevit::heatmap {

namespace {

// Every 16th entry (and the last) of matplotlib's 256-entry "inferno" table
// (van der Walt & Smith, CC0), linearly interpolated in between.
struct Anchor {
    int index;  // 0..255
    float r, g, b;
};
constexpr Anchor kInferno[] = {
    {0, 0.001462f, 0.000466f, 0.013866f},   {16, 0.042253f, 0.028139f, 0.141141f},
    {32, 0.129285f, 0.047293f, 0.290788f},  {48, 0.238273f, 0.036621f, 0.396353f},
    {64, 0.341500f, 0.062325f, 0.429425f},  {80, 0.441207f, 0.099338f, 0.431594f},
    {96, 0.540920f, 0.134729f, 0.415123f},  {112, 0.640135f, 0.171438f, 0.381065f},
    {128, 0.735683f, 0.215906f, 0.330245f}, {144, 0.822386f, 0.275197f, 0.266085f},
    {160, 0.894305f, 0.353399f, 0.193584f}, {176, 0.946965f, 0.449191f, 0.115272f},
    {192, 0.978422f, 0.557937f, 0.034931f}, {208, 0.987874f, 0.675267f, 0.065257f},
    {224, 0.974638f, 0.797692f, 0.206332f}, {240, 0.947594f, 0.917399f, 0.410665f},
    {255, 0.988362f, 0.998364f, 0.644924f},
};

constexpr float kOpacity = 0.6f;  // of the colour map over the photo

// value in [0, 1] → RGB in [0, 1].
void inferno(float value, float rgb[3]) {
    const float at = std::clamp(value, 0.f, 1.f) * 255.f;
    std::size_t i = 1;
    while (i + 1 < std::size(kInferno) && kInferno[i].index < at) ++i;
    const Anchor& lo = kInferno[i - 1];
    const Anchor& hi = kInferno[i];
    const float t = (at - lo.index) / float(hi.index - lo.index);
    rgb[0] = lo.r + t * (hi.r - lo.r);
    rgb[1] = lo.g + t * (hi.g - lo.g);
    rgb[2] = lo.b + t * (hi.b - lo.b);
}

// Bilinear sample of map at continuous grid coordinates, cell centres at
// integer + 0.5, edges clamped.
float sample(const std::vector<float>& map, int grid_height, int grid_width, float gy, float gx) {
    gy = std::clamp(gy - 0.5f, 0.f, float(grid_height - 1));
    gx = std::clamp(gx - 0.5f, 0.f, float(grid_width - 1));
    const int y0 = int(gy), x0 = int(gx);
    const int y1 = std::min(y0 + 1, grid_height - 1), x1 = std::min(x0 + 1, grid_width - 1);
    const float fy = gy - y0, fx = gx - x0;
    auto at = [&](int y, int x) { return map[std::size_t(y) * grid_width + x]; };
    return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

std::uint8_t to_byte(float v) { return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.f, 255.f))); }

}  // namespace

int display_factor(const Image& image) {
    const int shorter = std::max(1, std::min(image.width, image.height));
    return std::max(1, (kMinShorterSide + shorter - 1) / shorter);
}

Image scaled_up(const Image& image, int factor) {
    if (image.channels != 3) throw Error("heat-map: the photo must be RGB");
    Image out{image.width * factor, image.height * factor, 3,
              std::vector<std::uint8_t>(std::size_t(image.width) * factor * image.height * factor * 3)};
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
            std::copy_n(&image.pixels[(std::size_t(y / factor) * image.width + x / factor) * 3], 3,
                        &out.pixels[(std::size_t(y) * out.width + x) * 3]);
    return out;
}

Image overlay(const Image& photo, const CropBox& box, const std::vector<float>& map, int grid_height, int grid_width) {
    if (photo.channels != 3) throw Error("heat-map: the photo must be RGB");
    if (grid_height < 1 || grid_width < 1 || map.size() != std::size_t(grid_height) * grid_width)
        throw Error("heat-map: the map does not have grid_height × grid_width values");
    if (!(box.width > 0 && box.height > 0)) throw Error("heat-map: the crop box is empty");
    const auto [low, high] = std::minmax_element(map.begin(), map.end());
    if (!std::isfinite(*low) || !std::isfinite(*high)) throw Error("heat-map: the map is not finite");
    const float range = *high > *low ? *high - *low : 1.f;
    // The box's edges in whole pixels, and an outline as thick as the photo is large.
    const int left = int(std::lround(box.left)), top = int(std::lround(box.top));
    const int right = int(std::lround(box.left + box.width)), bottom = int(std::lround(box.top + box.height));
    const int line = std::max(2, std::min(photo.width, photo.height) / 200);
    Image out = photo;
    for (int y = 0; y < photo.height; ++y) {
        for (int x = 0; x < photo.width; ++x) {
            std::uint8_t* pixel = &out.pixels[(std::size_t(y) * photo.width + x) * 3];
            const bool inside = x >= left && x < right && y >= top && y < bottom;
            const bool on_outline = x >= left - line && x < right + line && y >= top - line && y < bottom + line &&
                                    !(x >= left && x < right && y >= top && y < bottom);
            if (on_outline) {
                pixel[0] = 0, pixel[1] = 255, pixel[2] = 255;  // cyan: not in the colour map
                continue;
            }
            if (!inside) {
                for (int c = 0; c < 3; ++c) pixel[c] = static_cast<std::uint8_t>(pixel[c] / 2);
                continue;
            }
            const float gy = float((y + 0.5 - box.top) * grid_height / box.height);
            const float gx = float((x + 0.5 - box.left) * grid_width / box.width);
            float rgb[3];
            inferno((sample(map, grid_height, grid_width, gy, gx) - *low) / range, rgb);
            for (int c = 0; c < 3; ++c) pixel[c] = to_byte((1 - kOpacity) * pixel[c] + kOpacity * 255.f * rgb[c]);
        }
    }
    return out;
}

void caption(Image& image, const std::string& text) {
    // Letters 21 pixels high on a 448-pixel photo, in proportion on larger ones.
    const int scale = std::max(1, std::min(image.width, image.height) / 150);
    const int margin = scale, band = font::kGlyphHeight * scale + 2 * margin;
    const int fits = (image.width - 2 * margin + scale) / (font::kAdvance * scale);
    if (fits < 3 || image.height < 4 * band || image.channels != 3) return;  // the band would hide the image
    const std::string shown = int(text.size()) <= fits ? text : text.substr(0, fits - 3) + "...";
    for (int y = 0; y < band; ++y)
        for (int x = 0; x < image.width; ++x)
            for (int c = 0; c < 3; ++c) {
                std::uint8_t& v = image.pixels[(std::size_t(y) * image.width + x) * 3 + c];
                v = static_cast<std::uint8_t>(v / 4);  // darkened, so white text reads on any image
            }
    const std::uint8_t white[3] = {255, 255, 255};
    font::draw_text(image, shown, margin, margin, scale, white);
}

}  // namespace onevit::heatmap
