#include <fmt/format.h>
#include <tbb/info.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "commands.hpp"
#include "onevit/model.hpp"

namespace onevit::cli {

namespace {

struct BenchOptions {
    std::string model_path;
    int batch = 1;
    int threads = 0;
    int iterations = 20;
    int warmup = 3;
    double max_seconds = 3.0;
    bool json = false;
};

struct Latencies {
    double median_ms = 0;
    double min_ms = 0;
    double max_ms = 0;
    int iterations = 0;
};

std::vector<float> random_input(const Architecture& arch, int batch) {
    std::mt19937 generator(20240601);  // fixed: every run times the same input
    std::normal_distribution<float> normalised_pixel(0.f, 1.f);
    std::vector<float> input(static_cast<std::size_t>(batch) * arch.channels * arch.image_height * arch.image_width);
    for (float& value : input) value = normalised_pixel(generator);
    return input;
}

Latencies measure(const Model& model, const std::vector<float>& input, const BenchOptions& options) {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < options.warmup; ++i) model.run(input.data(), options.batch);

    std::vector<double> milliseconds;
    const Clock::time_point started = Clock::now();
    const auto time_left = [&] {
        return std::chrono::duration<double>(Clock::now() - started).count() < options.max_seconds;
    };
    while (static_cast<int>(milliseconds.size()) < options.iterations && (milliseconds.empty() || time_left())) {
        const Clock::time_point start = Clock::now();
        model.run(input.data(), options.batch);
        milliseconds.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }

    std::sort(milliseconds.begin(), milliseconds.end());
    const std::size_t n = milliseconds.size();
    const double median = n % 2 ? milliseconds[n / 2] : (milliseconds[n / 2 - 1] + milliseconds[n / 2]) / 2;
    return {median, milliseconds.front(), milliseconds.back(), static_cast<int>(n)};
}

void bench(const BenchOptions& options) {
    const Model model = Model::load(options.model_path, Options{options.threads});
    const std::vector<float> input = random_input(model.info().arch, options.batch);
    const Latencies latency = measure(model, input, options);
    const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
    const double images_per_s = options.batch / (latency.median_ms / 1000.0);

    if (options.json) {
        const nlohmann::ordered_json report = {
            {"model", options.model_path},
            {"batch", options.batch},
            {"threads", threads},
            {"warmup", options.warmup},
            {"iterations", latency.iterations},
            {"latency_ms_median", latency.median_ms},
            {"latency_ms_min", latency.min_ms},
            {"latency_ms_max", latency.max_ms},
            {"images_per_s", images_per_s},
        };
        fmt::print("{}\n", report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
        return;
    }
    fmt::print("model          {}\n", options.model_path);
    fmt::print("batch          {}\n", options.batch);
    fmt::print("threads        {}\n", threads);
    fmt::print("iterations     {} timed, after {} warm-up\n", latency.iterations, options.warmup);
    fmt::print("latency        median {:.3f} ms, min {:.3f} ms, max {:.3f} ms\n", latency.median_ms, latency.min_ms,
               latency.max_ms);
    fmt::print("throughput     {:.1f} images/s\n", images_per_s);
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("bench", "Time Model::run on random input");
    auto options = std::make_shared<BenchOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--batch,-b", options->batch, "Images per run")->capture_default_str()->check(at_least(1));
    command->add_option("--threads,-t", options->threads, "Threads for the model (0 = all cores)")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--iters,-n", options->iterations, "Timed runs at most")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_option("--warmup,-w", options->warmup, "Untimed runs first")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--max-seconds", options->max_seconds, "Stop timing after this long (at least one run)")
        ->capture_default_str()
        ->check(at_least(0.0));
    command->add_flag("--json", options->json, "One JSON object instead of text");
    command->callback([options] { bench(*options); });
}

}  // namespace onevit::cli
