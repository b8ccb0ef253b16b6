#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "commands.hpp"
#include "model/emulate.hpp"
#include "runtime/measure.hpp"
#include "onevit/model.hpp"
#include "model/thread_plan.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

struct BenchOptions {
    std::string model_path;
    int batch = 1;
    int threads = 0;
    int streams = 0;
    std::string hint = "latency";
    std::string precision = "f32";
    int iterations = 20;
    int warmup = 3;
    double max_seconds = 3.0;
    bool json = false;
    int emulate_threads = 0;  // 0: a real run
};

struct Measurement {
    double median_ms = 0;  // per request, from submit to result
    double min_ms = 0;
    double max_ms = 0;
    int requests = 0;
    double images_per_s = 0;  // all streams together, over the wall time
};

std::vector<float> random_input(const Architecture& arch, int batch) {
    std::mt19937 generator(20240601);  // fixed: every run times the same input
    std::normal_distribution<float> normalised_pixel(0.f, 1.f);
    std::vector<float> input(static_cast<std::size_t>(batch) * arch.channels * arch.image_height * arch.image_width);
    for (float& value : input) value = normalised_pixel(generator);
    return input;
}

// Keeps one request in flight per stream, submitting the next as soon as the
// oldest returns, so no stream waits for another: with one stream this is plain
// back-to-back latency, with several it is throughput.
Measurement measure(const Model& model, const std::vector<float>& input, const BenchOptions& options) {
    using Clock = std::chrono::steady_clock;
    struct Request {
        Clock::time_point submitted;
        std::future<std::vector<float>> result;
    };
    const auto submit = [&] { return Request{Clock::now(), model.submit(input.data(), options.batch)}; };
    const int in_flight = model.streams();

    std::deque<Request> requests;
    for (int i = 0; i < in_flight * options.warmup; ++i) {
        requests.push_back(submit());
        if (static_cast<int>(requests.size()) == in_flight) requests.front().result.get(), requests.pop_front();
    }
    for (Request& request : requests) request.result.get();
    requests.clear();

    const int timed = in_flight * options.iterations;
    std::vector<double> milliseconds;
    const Clock::time_point started = Clock::now();
    const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
    for (int i = 0; i < in_flight; ++i) requests.push_back(submit());
    while (!requests.empty()) {
        Request oldest = std::move(requests.front());
        requests.pop_front();
        oldest.result.get();
        milliseconds.push_back(std::chrono::duration<double, std::milli>(Clock::now() - oldest.submitted).count());
        const int issued = static_cast<int>(milliseconds.size() + requests.size());
        if (issued < timed && elapsed() < options.max_seconds) requests.push_back(submit());
    }
    const double wall = elapsed();

    std::sort(milliseconds.begin(), milliseconds.end());
    const std::size_t n = milliseconds.size();
    const double median = n % 2 ? milliseconds[n / 2] : (milliseconds[n / 2 - 1] + milliseconds[n / 2]) / 2;
    return {median, milliseconds.front(), milliseconds.back(), static_cast<int>(n),
            double(n) * options.batch / wall};
}

Hint parse_hint(const std::string& hint) { return hint == "throughput" ? Hint::throughput : Hint::latency; }

// From opening the model file to the first result (one run at the bench's batch),
// the way an application starts: the file's pages may be in the page cache.
struct Startup {
    double load_ms = 0;
    double first_result_ms = 0;
};

Model load_and_run_once(const BenchOptions& options, Startup& startup, std::vector<float>& input) {
    using Clock = std::chrono::steady_clock;
    const auto since = [](Clock::time_point start) {
        return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    };
    const Clock::time_point start = Clock::now();
    Options model_options{options.threads, options.streams, parse_hint(options.hint),
                          resolve_precision(options.precision)};
    model_options.batch = options.batch;
    Model model = Model::load(options.model_path, model_options);
    startup.load_ms = since(start);
    input = random_input(model.info().arch, options.batch);
    const Clock::time_point input_ready = Clock::now();
    model.run(input.data(), options.batch);
    startup.first_result_ms = startup.load_ms + since(input_ready);
    return model;
}

void bench(const BenchOptions& options) {
    Startup startup;
    std::vector<float> input;
    const Model model = load_and_run_once(options, startup, input);
    const Architecture& arch = model.info().arch;
    const Measurement m = measure(model, input, options);
    const double gflops = forward_flops(arch) * m.images_per_s / 1e9;
    // Measured after the model's runs, in the same command: the ratio survives clock drift.
    const Precision precision = resolve_precision(options.precision);
    const double peak_gflops = matmul_peak_gflops(model.threads(), precision);
    const double efficiency = gflops / peak_gflops;
    // What the cost model says of the plan that runs (engine/model/thread_plan.hpp).
    const bool threads_chosen = options.threads == 0 || options.streams == 0;
    const double modelled_ms = modelled_latency_ms(arch, options.batch, model.threads() / model.streams());

    if (options.json) {
        const nlohmann::ordered_json report = {
            {"model", options.model_path},
            {"batch", options.batch},
            {"hint", options.hint},
            {"precision", to_string(precision)},
            {"streams", model.streams()},
            {"threads", model.threads()},
            {"threads_chosen", threads_chosen},
            {"modelled_latency_ms", modelled_ms},
            {"warmup", options.warmup},
            {"iterations", m.requests},
            {"latency_ms_median", m.median_ms},
            {"latency_ms_min", m.min_ms},
            {"latency_ms_max", m.max_ms},
            {"images_per_s", m.images_per_s},
            {"gflops_per_image", forward_flops(arch) / 1e9},
            {"gflops", gflops},
            {"peak_gflops", peak_gflops},
            {"efficiency", efficiency},
            {"load_ms", startup.load_ms},
            {"first_result_ms", startup.first_result_ms},
        };
        fmt::print("{}\n", report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
        return;
    }
    fmt::print("model          {}\n", options.model_path);
    fmt::print("batch          {}\n", options.batch);
    fmt::print("precision      {}\n", to_string(precision));
    fmt::print("hint           {} ({} stream{} x {} threads in all{})\n", options.hint, model.streams(),
               model.streams() > 1 ? "s" : "", model.threads(),
               threads_chosen ? fmt::format(", chosen by the cost model for batch {}", options.batch) : "");
    fmt::print("modelled       {:.3f} ms per forward on {} threads (the cost model's figure)\n", modelled_ms,
               model.threads() / model.streams());
    fmt::print("requests       {} timed, after {} warm-up round{}\n", m.requests, options.warmup,
               options.warmup == 1 ? "" : "s");
    fmt::print("latency        median {:.3f} ms, min {:.3f} ms, max {:.3f} ms\n", m.median_ms, m.min_ms, m.max_ms);
    fmt::print("throughput     {:.2f} images/s\n", m.images_per_s);
    fmt::print("compute        {:.1f} GFLOP/s ({:.2f} GFLOP per image)\n", gflops, forward_flops(arch) / 1e9);
    fmt::print("matmul peak    {:.1f} GFLOP/s (oneDNN {} matmul, {} threads, measured now)\n", peak_gflops,
               to_string(precision), model.threads());
    fmt::print("efficiency     {:.1f}% of the matmul peak\n", 100 * efficiency);
    fmt::print("startup        load {:.1f} ms, first result {:.1f} ms after opening the file\n", startup.load_ms,
               startup.first_result_ms);
}

// --emulate-threads T: the T-thread plan timed on one thread (engine/model/emulate.hpp),
// against T times the one-thread matmul peak measured now.
void bench_emulated(const BenchOptions& options) {
    const Precision precision = resolve_precision(options.precision);
    const EmulatedForward e = emulate_forward(options.model_path, options.batch, options.emulate_threads,
                                              options.iterations, precision);
    const double gflops = forward_flops(e.arch) * options.batch / (e.latency_ms / 1e3) / 1e9;
    const double peak_per_thread = matmul_peak_gflops_thread_cpu(precision);
    const double efficiency = gflops / (peak_per_thread * e.threads);
    if (options.json) {
        nlohmann::ordered_json phases = nlohmann::ordered_json::array();
        for (const EmulatedPhaseTime& p : e.phases)
            phases.push_back({{"tiles", p.tiles}, {"slowest_thread_ms", p.slowest_thread_ms},
                              {"all_tiles_ms", p.all_tiles_ms}});
        const nlohmann::ordered_json report = {
            {"model", options.model_path},
            {"batch", options.batch},
            {"precision", to_string(precision)},
            {"emulated_threads", e.threads},
            {"runs", e.runs},
            {"latency_ms", e.latency_ms},
            {"one_core_ms", e.work_ms},
            {"gflops", gflops},
            {"peak_gflops_per_thread", peak_per_thread},
            {"efficiency", efficiency},
            {"phases", phases},
        };
        fmt::print("{}\n", report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
        return;
    }
    fmt::print("model          {}\n", options.model_path);
    fmt::print("batch          {}\n", options.batch);
    fmt::print("emulated       the {}-thread plan, its tiles run one after another on one thread, in its CPU time ({} runs);\n"
               "               leaves out memory-bandwidth contention and thread wake-ups\n",
               e.threads, e.runs);
    fmt::print("latency        {:.3f} ms emulated (the slowest thread's share of each phase, summed)\n", e.latency_ms);
    fmt::print("one core       {:.3f} ms for all tiles of this plan ({:.2f}x the emulated latency)\n", e.work_ms,
               e.work_ms / e.latency_ms);
    fmt::print("compute        {:.1f} GFLOP/s emulated\n", gflops);
    fmt::print("precision      {}\n", to_string(precision));
    fmt::print("matmul peak    {:.1f} GFLOP/s per thread (oneDNN {} matmul, 1 thread, CPU time, measured now) x {}\n",
               peak_per_thread, to_string(precision), e.threads);
    fmt::print("efficiency     {:.1f}% of that peak\n", 100 * efficiency);
    fmt::print("phases         tiles  slowest thread ms  all tiles ms\n");
    for (std::size_t i = 0; i < e.phases.size(); ++i)
        fmt::print("  {:>3}          {:>5}  {:>17.3f}  {:>12.3f}\n", i, e.phases[i].tiles,
                   e.phases[i].slowest_thread_ms, e.phases[i].all_tiles_ms);
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("bench", "Time the model on random input, against this machine's matmul peak");
    auto options = std::make_shared<BenchOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    add_batch_option(*command, options->batch);
    add_threads_option(*command, options->threads);
    command->add_option("--streams,-s", options->streams, "Streams (0 = chosen for the hint)")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--hint", options->hint, "latency: one stream; throughput: several streams")
        ->capture_default_str()
        ->check(CLI::IsMember({"latency", "throughput"}));
    command->add_option("--iters,-n", options->iterations, "Timed requests per stream at most")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_option("--warmup,-w", options->warmup, "Untimed runs first")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--max-seconds", options->max_seconds, "Stop timing after this long (at least one run)")
        ->capture_default_str()
        ->check(at_least(0.0));
    add_precision_option(*command, options->precision);
    command->add_flag("--json", options->json, "One JSON object instead of text");
    command->add_option("--emulate-threads", options->emulate_threads,
                        "Time the plan for this many threads on one thread, phase by phase (no real run)")
        ->check(at_least(1));
    command->callback([options] { options->emulate_threads > 0 ? bench_emulated(*options) : bench(*options); });
}

}  // namespace onevit::cli
