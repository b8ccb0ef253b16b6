// Writes synthetic seed inputs for the fuzz targets (tests/fuzz/run.sh adds
// the real files: weights/digits_vit.ovit, weights/samples, tests/data/images).
//
//   fuzz_seeds models DIR   tiny .ovit files, one per architecture variant
//   fuzz_seeds images DIR   PNGs of every colour type / bit depth, JPEG variants
#include <cstdio>
#include <fstream>
#include <string>

#include "synthetic.hpp"
#include "synthetic_images.hpp"

namespace {

using namespace onevit::synthetic;

int written = 0;

void write(const std::string& dir, const std::string& name, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::fprintf(stderr, "fuzz_seeds: cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
    ++written;
}

void models(const std::string& dir) {
    struct Variant {
        const char* name;
        Spec spec;
    };
    std::vector<Variant> variants;
    variants.push_back({"tiny", Spec{}});
    Spec s;
    s = {};
    s.channels = 1;
    s.labels = false;
    s.interpolation = "bilinear";
    variants.push_back({"grey", s});
    s = {};
    s.distilled = true;
    s.head_norm = true;
    variants.push_back({"distilled", s});
    s = {};
    s.mean_pool = true;
    s.final_norm = false;
    s.qkv_bias = false;
    variants.push_back({"mean_pool", s});
    s = {};
    s.attn_proj = false;
    s.heads = 2;
    s.head_dim = 2;
    s.dim = 4;
    s.tanh_gelu = true;
    s.resize = "direct";
    s.interpolation = "nearest";
    variants.push_back({"no_proj", s});
    s = {};
    s.depth = 3;
    s.image = 6;
    s.patch = 3;
    s.heads = 1;
    s.head_dim = 8;
    variants.push_back({"deeper", s});
    s = {};
    s.mlp_head = 5;
    variants.push_back({"mlp_head", s});
    s = {};
    s.patch_norm = true;
    variants.push_back({"patch_norm", s});
    variants.push_back({"zoo", zoo_spec()});
    for (const Variant& v : variants) write(dir, std::string(v.name) + ".ovit", tiny_model(v.spec).bytes());
    // Version 2 files, one per feature set the zoo combines (weights/FORMAT.md, "Features (version 2)").
    struct Modern {
        const char* name;
        std::vector<std::string> features;
        Spec spec;
    };
    for (const Modern& v :
         {Modern{"v2_rope_swiglu", {"no_pos_embed", "rope", "swiglu"}, Spec{}},
          Modern{"v2_rms_qk_parallel", {"rms_norm", "qk_norm", "parallel"}, Spec{}},
          Modern{"v2_post_relpos_norms", {"post_norm", "rel_pos_bias", "attn_norm", "mlp_norm"}, Spec{}},
          Modern{"v2_embed_norm_pool", {"embed_norm", "rope", "attn_pool_shape"}, zoo_spec()}})
        write(dir, std::string(v.name) + ".ovit", modern_model(v.features, v.spec).bytes());
    // Linear weights stored in bf16 and int8 (weights/FORMAT.md, "Tensor data types").
    for (const auto& [name, dtype] : {std::pair{"bf16", kBF16}, std::pair{"int8", kInt8}}) {
        ModelBytes m = tiny_model(Spec{});
        m.store_linear_weights(dtype);
        write(dir, std::string("tiny_") + name + ".ovit", m.bytes());
    }
}

void images(const std::string& dir) {
    struct PngVariant {
        const char* name;
        int color_type, bit_depth;
    };
    for (const PngVariant& v : {PngVariant{"grey1", PNG_COLOR_TYPE_GRAY, 1},
                                {"grey4", PNG_COLOR_TYPE_GRAY, 4},
                                {"grey8", PNG_COLOR_TYPE_GRAY, 8},
                                {"grey16", PNG_COLOR_TYPE_GRAY, 16},
                                {"grey_alpha8", PNG_COLOR_TYPE_GRAY_ALPHA, 8},
                                {"rgb8", PNG_COLOR_TYPE_RGB, 8},
                                {"rgb16", PNG_COLOR_TYPE_RGB, 16},
                                {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8},
                                {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16},
                                {"palette2", PNG_COLOR_TYPE_PALETTE, 2},
                                {"palette8", PNG_COLOR_TYPE_PALETTE, 8}}) {
        for (bool interlace : {false, true}) {
            PngOptions o;
            o.width = 9;
            o.height = 7;
            o.color_type = v.color_type;
            o.bit_depth = v.bit_depth;
            o.interlace = interlace;
            write(dir, std::string(v.name) + (interlace ? "_interlaced" : "") + ".png", encode_png(o));
        }
    }
    struct JpegVariant {
        const char* name;
        int components;
        bool progressive, arithmetic, subsample;
        int restart_rows;
    };
    for (const JpegVariant& v : {JpegVariant{"grey", 1, false, false, false, 0},
                                 {"rgb420", 3, false, false, true, 0},
                                 {"rgb444", 3, false, false, false, 0},
                                 {"progressive", 3, true, false, true, 0},
                                 {"arithmetic", 3, false, true, true, 0},
                                 {"restarts", 3, false, false, true, 1},
                                 {"cmyk", 4, false, false, false, 0},
                                 {"grey_progressive", 1, true, false, false, 0}}) {
        JpegOptions o;
        o.width = 19;
        o.height = 13;
        o.components = v.components;
        o.progressive = v.progressive;
        o.arithmetic = v.arithmetic;
        o.subsample = v.subsample;
        o.restart_rows = v.restart_rows;
        write(dir, std::string(v.name) + ".jpg", encode_jpeg(o));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || (std::string(argv[1]) != "models" && std::string(argv[1]) != "images")) {
        std::fprintf(stderr, "usage: fuzz_seeds models|images DIR\n");
        return 2;
    }
    try {
        if (std::string(argv[1]) == "models")
            models(argv[2]);
        else
            images(argv[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
        return 1;
    }
    std::printf("fuzz_seeds: %d %s in %s\n", written, argv[1], argv[2]);
    return 0;
}
