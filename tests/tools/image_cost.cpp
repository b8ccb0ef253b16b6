// The CPU time per image of onevit's image path, stage by stage, and a hash of
// what it produces (docs/performance.md, "Image decoding and preprocessing"):
//
//   image_cost [--rounds N] [--hash | --hash-bytes] [--recipe deit|hf|grey] PATH...
//
// PATHs are image files or directories (searched recursively). Every file is
// read into memory once; each round then decodes every image from memory
// (decode_image_bytes), resizes the part the centre crop keeps (the resize
// stage alone, as preprocess does it) and runs preprocess on the decoded image
// (resize + crop + normalise), and preprocess_image_bytes on the file's bytes
// (the same, decoding a JPEG in part). Times are the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), so other processes on the machine change them
// less than wall time; per stage it prints the median over rounds of the mean
// per image. --hash prints, per image, FNV-1a hashes of the decoded pixels and
// the float tensor's bytes instead: two builds whose lists agree produce the
// same tensors; --hash-bytes the same list with the tensor from
// preprocess_image_bytes.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "image/resize.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "runtime/thread_cpu_clock.hpp"

namespace {

using onevit::thread_cpu_ms;

std::uint64_t fnv1a(const void* data, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

struct File {
    std::string path;
    std::vector<std::uint8_t> bytes;
};

std::vector<File> read_files(const std::vector<std::string>& paths) {
    std::vector<std::string> names;
    for (const std::string& p : paths) {
        if (std::filesystem::is_directory(p)) {
            for (const auto& entry : std::filesystem::recursive_directory_iterator(p))
                if (entry.is_regular_file() && onevit::has_image_extension(entry.path().string()))
                    names.push_back(entry.path().string());
        } else {
            names.push_back(p);
        }
    }
    std::sort(names.begin(), names.end());
    std::vector<File> files;
    for (const std::string& name : names) {
        std::ifstream in(name, std::ios::binary);
        files.push_back({name, {std::istreambuf_iterator<char>(in), {}}});
    }
    return files;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 5;
    bool hash = false, hash_bytes = false;
    std::string recipe_name = "deit";
    std::vector<std::string> paths;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--rounds" && i + 1 < argc)
            rounds = std::max(1, std::atoi(argv[++i]));
        else if (arg == "--hash")
            hash = true;
        else if (arg == "--hash-bytes")
            hash = hash_bytes = true;
        else if (arg == "--recipe" && i + 1 < argc)
            recipe_name = argv[++i];
        else
            paths.push_back(arg);
    }
    if (paths.empty()) {
        std::fprintf(stderr,
                     "usage: image_cost [--rounds N] [--hash | --hash-bytes] [--recipe deit|hf|grey] PATH...\n");
        return 2;
    }
    onevit::Architecture arch;
    arch.channels = 3;
    arch.image_height = arch.image_width = 224;
    onevit::Preprocessing recipe;
    recipe.resize = onevit::Resize::shorter_then_crop;
    recipe.resize_size = 256;
    recipe.interpolation = onevit::Interpolation::bicubic;
    recipe.mean = {0.485f, 0.456f, 0.406f};
    recipe.std = {0.229f, 0.224f, 0.225f};
    if (recipe_name == "hf") {
        recipe.resize = onevit::Resize::direct;
        recipe.interpolation = onevit::Interpolation::bilinear;
        recipe.mean = recipe.std = {0.5f, 0.5f, 0.5f};
    } else if (recipe_name == "grey") {
        arch.channels = 1;
        recipe.mean = {0.5f};
        recipe.std = {0.25f};
    } else if (recipe_name != "deit") {
        std::fprintf(stderr, "image_cost: unknown recipe %s\n", recipe_name.c_str());
        return 2;
    }

    const std::vector<File> files = read_files(paths);
    if (hash) {
        for (const File& f : files) {
            try {
                const onevit::Image image =
                    onevit::decode_image_bytes(f.bytes.data(), f.bytes.size(), arch.channels, {}, f.path);
                const std::vector<float> chw =
                    hash_bytes ? onevit::preprocess_image_bytes(f.bytes.data(), f.bytes.size(), arch, recipe)
                               : onevit::preprocess(image, arch, recipe);
                std::printf("%016llx %016llx %dx%d %s\n",
                            static_cast<unsigned long long>(fnv1a(image.pixels.data(), image.pixels.size())),
                            static_cast<unsigned long long>(fnv1a(chw.data(), chw.size() * sizeof(float))), image.width,
                            image.height, f.path.c_str());
            } catch (const onevit::Error& e) {
                std::printf("error %s\n", e.what());
            }
        }
        return 0;
    }

    // The resize stage alone: the centre-cropped part of a shorter-side resize, as preprocess asks for it.
    auto resize_stage = [&](const onevit::Image& image) {
        const int shorter = std::min(image.width, image.height), longer = std::max(image.width, image.height);
        const int scaled = static_cast<int>(static_cast<double>(std::int64_t(recipe.resize_size) * longer) / shorter);
        const int w = image.width < image.height ? recipe.resize_size : scaled;
        const int h = image.width < image.height ? scaled : recipe.resize_size;
        onevit::ResizeRegion r{std::max(0, (w - 224) / 2), std::max(0, (h - 224) / 2), std::min(w, 224),
                               std::min(h, 224)};
        return onevit::resize(image, w, h, recipe.interpolation, r);
    };

    std::vector<double> decode_ms, resize_ms, preprocess_ms, bytes_ms;
    for (int round = 0; round < rounds; ++round) {
        double decode = 0, resize = 0, preprocess = 0, bytes = 0;
        for (const File& f : files) {
            double t0 = thread_cpu_ms();
            const onevit::Image image =
                onevit::decode_image_bytes(f.bytes.data(), f.bytes.size(), arch.channels, {}, f.path);
            double t1 = thread_cpu_ms();
            if (recipe.resize == onevit::Resize::shorter_then_crop) {
                const onevit::Image kept = resize_stage(image);
                if (kept.pixels.empty()) return 1;
            }
            double t2 = thread_cpu_ms();
            const std::vector<float> chw = onevit::preprocess(image, arch, recipe);
            double t3 = thread_cpu_ms();
            if (chw.empty()) return 1;
            const std::vector<float> in_part =
                onevit::preprocess_image_bytes(f.bytes.data(), f.bytes.size(), arch, recipe);
            double t4 = thread_cpu_ms();
            if (in_part.empty()) return 1;
            bytes += t4 - t3;
            decode += t1 - t0;
            resize += t2 - t1;
            preprocess += t3 - t2;
        }
        decode_ms.push_back(decode / files.size());
        resize_ms.push_back(resize / files.size());
        preprocess_ms.push_back(preprocess / files.size());
        bytes_ms.push_back(bytes / files.size());
    }
    std::printf("%zu images, %d rounds, CPU ms per image (median of round means):\n", files.size(), rounds);
    std::printf("decode %.3f  resize %.3f  preprocess %.3f  decode+preprocess %.3f  preprocess_image_bytes %.3f\n",
                median(decode_ms), median(resize_ms), median(preprocess_ms), median(decode_ms) + median(preprocess_ms),
                median(bytes_ms));
    return 0;
}
