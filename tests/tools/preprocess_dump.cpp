// Writes what onevit makes of an image as a float32 .npy, for
// tests/preprocess_vs_pil.py to compare with PIL + torchvision:
//   preprocess_dump decode IMAGE OUT.npy [--grey]
//       the decoded pixels, H × W × C, values 0..255
//   preprocess_dump preprocess IMAGE OUT.npy --resize shorter_then_crop|direct|squash_then_crop
//       [--resize-size N] --height H --width W --interpolation nearest|bilinear|bicubic
//       --mean M0,M1,M2 --std S0,S1,S2 [--grey]
//       the model input, C × H × W

#include <CLI/CLI.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "npy.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Dump onevit's decoded or preprocessed image as .npy"};
    app.require_subcommand(1);
    std::string image_path, out_path;
    bool grey = false;

    CLI::App* decode = app.add_subcommand("decode", "decoded pixels, H x W x C");
    decode->add_option("image", image_path)->required();
    decode->add_option("out", out_path)->required();
    decode->add_flag("--grey", grey, "decode to one channel");

    CLI::App* prep = app.add_subcommand("preprocess", "model input, C x H x W");
    onevit::Architecture arch;
    onevit::Preprocessing recipe;
    prep->add_option("image", image_path)->required();
    prep->add_option("out", out_path)->required();
    prep->add_flag("--grey", grey, "decode to one channel");
    prep->add_option("--resize", recipe.resize)
        ->required()
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, onevit::Resize>{{"shorter_then_crop", onevit::Resize::shorter_then_crop},
                                                  {"direct", onevit::Resize::direct},
                                                  {"squash_then_crop", onevit::Resize::squash_then_crop}}));
    prep->add_option("--resize-size", recipe.resize_size);
    prep->add_option("--height", arch.image_height)->required();
    prep->add_option("--width", arch.image_width)->required();
    prep->add_option("--interpolation", recipe.interpolation)
        ->required()
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, onevit::Interpolation>{{"nearest", onevit::Interpolation::nearest},
                                                         {"bilinear", onevit::Interpolation::bilinear},
                                                         {"bicubic", onevit::Interpolation::bicubic}}));
    prep->add_option("--mean", recipe.mean)->required()->delimiter(',');
    prep->add_option("--std", recipe.std)->required()->delimiter(',');

    CLI11_PARSE(app, argc, argv);
    try {
        const int channels = grey ? 1 : 3;
        const onevit::Image image = onevit::decode_image(image_path, channels);
        onevit::npy::Array out;
        if (decode->parsed()) {
            out.shape = {image.height, image.width, image.channels};
            out.data.assign(image.pixels.begin(), image.pixels.end());
        } else {
            arch.channels = channels;
            out.shape = {channels, arch.image_height, arch.image_width};
            out.data = onevit::preprocess(image, arch, recipe);
        }
        onevit::npy::write_float32(out_path, out);
    } catch (const std::exception& e) {
        std::cerr << "preprocess_dump: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
