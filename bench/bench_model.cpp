// Whole-model forward benchmarks (Google Benchmark): every .ovit file in the models
// folder, at each batch size and thread count asked for.
//
//   ONEVIT_BENCH_MODELS=DIR   the folder (default: <source>/bench/models, written by
//                             bench/make_random_models.py)
//   --batch=1,8               batch sizes (default 1,8)
//   --threads=2               Model threads, 0 = all cores (default: all cores)
//   --benchmark_repetitions=5 for mean/median/stddev/cv rows instead of one run
//
// Counters: items_per_second is images/s; GFLOPS is the matrix-product work of the
// forward pass (onevit::forward_flops) divided by wall-clock time.
#include <benchmark/benchmark.h>
#include <tbb/info.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/measure.hpp"
#include "onevit/model.hpp"

namespace {

namespace fs = std::filesystem;

// One model resident at a time. Benchmarks run in registration order (file, then
// threads, then batch), so each file is loaded once per thread count, and ViT-L
// (~1.2 GB mapped plus its reordered weights) never sits beside another model.
struct Resident {
    std::string path;
    int threads = -1;
    std::optional<onevit::Model> model;
    std::set<int> warmed_batches;
};

Resident& resident(const std::string& path, int threads) {
    static Resident current;
    if (current.path != path || current.threads != threads) {
        current.model.reset();  // free the old one before mapping the next
        current.warmed_batches.clear();
        current.model.emplace(onevit::Model::load(path, onevit::Options{threads}));
        current.path = path;
        current.threads = threads;
    }
    return current;
}

void forward(benchmark::State& state, const std::string& path) {
    const int batch = static_cast<int>(state.range(0));
    const int threads = static_cast<int>(state.range(1));
    try {
        Resident& r = resident(path, threads);
        const onevit::Architecture& arch = r.model->info().arch;
        std::vector<float> input(static_cast<std::size_t>(batch) * arch.channels * arch.image_height *
                                 arch.image_width);
        std::mt19937 generator(20240601);  // fixed: every run sees the same input
        std::normal_distribution<float> normalised_pixel;
        std::generate(input.begin(), input.end(), [&] { return normalised_pixel(generator); });
        // The first run at a batch size builds primitives and scratch buffers: untimed.
        if (r.warmed_batches.insert(batch).second) r.model->run(input.data(), batch);

        for (auto _ : state) {
            std::vector<float> logits = r.model->run(input.data(), batch);
            benchmark::DoNotOptimize(logits.data());
        }
        state.SetItemsProcessed(state.iterations() * batch);
        state.counters["GFLOPS"] =
            benchmark::Counter(onevit::forward_flops(arch) * 1e-9 * batch * static_cast<double>(state.iterations()),
                               benchmark::Counter::kIsRate);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// "1,8" → {1, 8}; exits with a message on anything else.
std::vector<int> parse_list(const std::string& flag, const std::string& text, int minimum) {
    std::vector<int> values;
    std::stringstream stream(text);
    for (std::string item; std::getline(stream, item, ',');) {
        char* end = nullptr;
        const long value = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || value < minimum || value > 4096) {
            std::fprintf(stderr, "bench_model: %s: bad value '%s' (integers >= %d, comma-separated)\n", flag.c_str(),
                         item.c_str(), minimum);
            std::exit(2);
        }
        values.push_back(static_cast<int>(value));
    }
    return values;
}

// Takes our own flags out of argv (Google Benchmark has already taken its own).
void take_flags(int& argc, char** argv, std::vector<int>& batches, std::vector<int>& threads) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--batch=", 0) == 0) {
            batches = parse_list("--batch", arg.substr(8), 1);
        } else if (arg.rfind("--threads=", 0) == 0) {
            threads = parse_list("--threads", arg.substr(10), 0);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
}

std::vector<fs::path> model_files(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code error;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, error))
        if (entry.is_regular_file() && entry.path().extension() == ".ovit") files.push_back(entry.path());
    // Smallest first: quick results come before ViT-L; the name breaks ties.
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        const auto size_a = fs::file_size(a), size_b = fs::file_size(b);
        return size_a != size_b ? size_a < size_b : a < b;
    });
    return files;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    std::vector<int> batches{1, 8};
    std::vector<int> threads{0};
    take_flags(argc, argv, batches, threads);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

    const char* from_env = std::getenv("ONEVIT_BENCH_MODELS");
    const fs::path dir = from_env && *from_env ? from_env : ONEVIT_BENCH_DEFAULT_MODELS;
    const std::vector<fs::path> files = model_files(dir);
    if (files.empty()) {
        std::printf(
            "bench_model: no .ovit files in %s\n"
            "Make random-weight ViT-Ti/S/B models with\n"
            "    /usr/bin/python3 bench/make_random_models.py --out %s\n"
            "or point ONEVIT_BENCH_MODELS at a folder of .ovit files.\n",
            dir.c_str(), dir.c_str());
        return 0;
    }

    // 0 means "all cores" to Model; show the number it stands for in the names.
    for (int& t : threads)
        if (t == 0) t = tbb::info::default_concurrency();
    benchmark::AddCustomContext("onevit_models", dir.string());
    for (const fs::path& file : files) {
        benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(file.stem().c_str(), forward, file.string());
        b->ArgNames({"batch", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond)->ReportAggregatesOnly(true);
        for (int t : threads)
            for (int batch : batches) b->Args({batch, t});
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
