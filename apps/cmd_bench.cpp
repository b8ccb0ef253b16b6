#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_input.hpp"
#include "commands.hpp"
#include "image_files.hpp"
#include "latency_stats.hpp"
#include "machine_info.hpp"
#include "model/emulate.hpp"
#include "runtime/measure.hpp"
#include "onevit/model.hpp"
#include "model/thread_plan.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

struct BenchOptions {
    std::string model_path;
    RunOptions run{"", 0, 1};  // the file's precision; bench times one image per run unless told
    int streams = 0;
    std::string hint = "latency";
    std::vector<std::string> inputs;  // --input: real images instead of random pixels
    int iterations = 20;
    int warmup = 3;
    double max_seconds = 3.0;
    bool json = false;
    int emulate_threads = 0;  // 0: a real run
};

struct Measurement {
    LatencyStats latency_ms;  // per request, from submit to result
    double images_per_s = 0;  // all streams together, over the wall time
};

// Keeps one request in flight per stream, submitting the next as soon as the
// oldest returns, so no stream waits for another: with one stream this is plain
// back-to-back latency, with several it is throughput. Request i runs input
// batch i modulo their number.
Measurement measure(const Model& model, const BenchInput& input, const BenchOptions& options) {
    using Clock = std::chrono::steady_clock;
    struct Request {
        Clock::time_point submitted;
        std::future<std::vector<float>> result;
    };
    std::size_t submitted = 0;
    const auto submit = [&] {
        const std::vector<float>& batch = input.batches[submitted++ % input.batches.size()];
        return Request{Clock::now(), model.submit(batch.data(), options.run.batch)};
    };
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
    return {latency_stats(milliseconds), double(milliseconds.size()) * options.run.batch / wall};
}

Hint parse_hint(const std::string& hint) { return hint == "throughput" ? Hint::throughput : Hint::latency; }

// From opening the model file to the first result (one run at the bench's batch),
// the way an application starts: the file's pages may be in the page cache.
// Preparing the input (random, or decoding --input's images) is not counted.
struct Startup {
    double load_ms = 0;
    double first_result_ms = 0;
};

Model load_and_run_once(const BenchOptions& options, Startup& startup, BenchInput& input) {
    using Clock = std::chrono::steady_clock;
    const auto since = [](Clock::time_point start) {
        return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    };
    const std::vector<std::string> images =
        options.inputs.empty() ? std::vector<std::string>{} : expand_image_inputs(options.inputs);
    const Clock::time_point start = Clock::now();
    Options base;
    base.streams = options.streams;
    base.hint = parse_hint(options.hint);
    Model model = load_model(options.model_path, options.run, base);
    startup.load_ms = since(start);
    input = images.empty() ? random_input(model.info().arch, options.run.batch)
                           : image_input(model.info(), images, options.run.batch, model.streams());
    const Clock::time_point input_ready = Clock::now();
    model.run(input.batches.front().data(), options.run.batch);
    startup.first_result_ms = startup.load_ms + since(input_ready);
    return model;
}

// What a timed run measured, and the plan it ran: what bench prints.
struct BenchFigures {
    Startup startup;
    BenchInput input;
    Measurement measured;
    Precision precision = Precision::f32;
    int streams = 0, threads = 0;
    bool threads_chosen = false;  // by the cost model: --threads was 0
    std::string hint;             // several streams are throughput, whatever --hint said
    double modelled_ms = 0;       // the cost model's latency for the plan that ran
    double gflops_per_image = 0, gflops = 0, peak_gflops = 0, efficiency = 0;
};

BenchFigures run_bench(const BenchOptions& options) {
    BenchFigures f;
    const Model model = load_and_run_once(options, f.startup, f.input);
    const Architecture& arch = model.info().arch;
    f.measured = measure(model, f.input, options);
    f.precision = model.precision();
    f.streams = model.streams();
    f.threads = model.threads();
    f.threads_chosen = options.run.threads == 0;
    f.hint = f.streams > 1 ? "throughput" : "latency";
    f.modelled_ms = modelled_latency_ms(arch, options.run.batch, f.threads / f.streams, f.precision);
    f.gflops_per_image = forward_flops(arch) / 1e9;
    f.gflops = f.gflops_per_image * f.measured.images_per_s;
    // Measured after the model's runs, in the same command: the ratio survives clock drift.
    f.peak_gflops = matmul_peak_gflops(f.threads, f.precision);
    f.efficiency = f.gflops / f.peak_gflops;
    return f;
}

void print_json(const BenchOptions& options, const BenchFigures& f) {
    const LatencyStats& latency = f.measured.latency_ms;
    const BenchInput& input = f.input;
    nlohmann::ordered_json report = {
        {"model", options.model_path},
        {"batch", options.run.batch},
        {"hint", f.hint},
        {"precision", to_string(f.precision)},
        {"streams", f.streams},
        {"threads", f.threads},
        {"threads_chosen", f.threads_chosen},
        {"modelled_latency_ms", f.modelled_ms},
        {"warmup", options.warmup},
        {"iterations", latency.count},
        {"latency_ms_mean", latency.mean},
        {"latency_ms_median", latency.p50},
        {"latency_ms_p50", latency.p50},
        {"latency_ms_p90", latency.p90},
        {"latency_ms_p99", latency.p99},
        {"latency_ms_min", latency.min},
        {"latency_ms_max", latency.max},
        {"images_per_s", f.measured.images_per_s},
        {"gflops_per_image", f.gflops_per_image},
        {"gflops", f.gflops},
        {"peak_gflops", f.peak_gflops},
        {"efficiency", f.efficiency},
        {"load_ms", f.startup.load_ms},
        {"first_result_ms", f.startup.first_result_ms},
        {"input", input.decode_ms ? "images" : "random"},
    };
    if (input.decode_ms) {
        report["input_images"] = input.images;
        report["decode_preprocess_ms_mean"] = input.decode_ms->mean;
        report["decode_preprocess_ms_p50"] = input.decode_ms->p50;
        report["decode_preprocess_ms_p90"] = input.decode_ms->p90;
        report["decode_preprocess_ms_max"] = input.decode_ms->max;
    }
    report["cpu"] = cpu_model();
    report["isa"] = cpu_isa();
    report["onednn_version"] = onednn_version();
    report["onevit_version"] = ONEVIT_VERSION;
    fmt::print("{}\n", report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void print_text(const BenchOptions& options, const BenchFigures& f) {
    const LatencyStats& latency = f.measured.latency_ms;
    const BenchInput& input = f.input;
    fmt::print("model          {}\n", options.model_path);
    fmt::print("machine        {}, oneDNN {} ({}), onevit {}\n", cpu_model(), onednn_version(), cpu_isa(),
               ONEVIT_VERSION);
    fmt::print("batch          {}\n", options.run.batch);
    fmt::print("precision      {}\n", to_string(f.precision));
    fmt::print("hint           {} ({} stream{} x {} threads in all{})\n", f.hint, f.streams, f.streams > 1 ? "s" : "",
               f.threads,
               f.threads_chosen      ? fmt::format(", chosen by the cost model for batch {}", options.run.batch)
               : options.streams > 0 ? ", as given"
                                     : ", threads as given");
    fmt::print("modelled       {:.3f} ms per forward on {} threads (the cost model's figure)\n", f.modelled_ms,
               f.threads / f.streams);
    if (input.decode_ms)
        fmt::print(
            "input          {} images: decode + preprocess {:.3f} ms per image (mean; p50 {:.3f}, max {:.3f}), "
            "one thread, not in the latency below\n",
            input.images, input.decode_ms->mean, input.decode_ms->p50, input.decode_ms->max);
    fmt::print("requests       {} timed, after {} warm-up round{}\n", latency.count, options.warmup,
               options.warmup == 1 ? "" : "s");
    fmt::print("latency        mean {:.3f} ms, p50 {:.3f}, p90 {:.3f}, p99 {:.3f}, min {:.3f}, max {:.3f}\n",
               latency.mean, latency.p50, latency.p90, latency.p99, latency.min, latency.max);
    fmt::print("throughput     {:.2f} images/s\n", f.measured.images_per_s);
    fmt::print("compute        {:.1f} GFLOP/s ({:.2f} GFLOP per image)\n", f.gflops, f.gflops_per_image);
    fmt::print("matmul peak    {:.1f} GFLOP/s (oneDNN {} matmul, {} threads, measured now)\n", f.peak_gflops,
               to_string(f.precision), f.threads);
    fmt::print("efficiency     {:.1f}% of the matmul peak\n", 100 * f.efficiency);
    fmt::print("startup        load {:.1f} ms, first result {:.1f} ms after opening the file\n", f.startup.load_ms,
               f.startup.first_result_ms);
}

void bench(const BenchOptions& options) {
    const BenchFigures figures = run_bench(options);
    options.json ? print_json(options, figures) : print_text(options, figures);
}

// --emulate-threads T: the T-thread plan timed on one thread (engine/model/emulate.hpp),
// against T times the one-thread matmul peak measured now.
void bench_emulated(const BenchOptions& options) {
    const std::optional<Precision> given = resolve_precision(options.run.precision);
    const Precision precision = given ? *given : Model::load(options.model_path).info().stored_precision;
    const EmulatedForward e =
        emulate_forward(options.model_path, options.run.batch, options.emulate_threads, options.iterations, precision);
    const double gflops = forward_flops(e.arch) * options.run.batch / (e.latency_ms / 1e3) / 1e9;
    const double peak_per_thread = matmul_peak_gflops_thread_cpu(precision);
    const double efficiency = gflops / (peak_per_thread * e.threads);
    if (options.json) {
        nlohmann::ordered_json phases = nlohmann::ordered_json::array();
        for (const EmulatedPhaseTime& p : e.phases) {
            nlohmann::ordered_json op_ms = nlohmann::ordered_json::object();
            for (const auto& [name, ms] : p.op_ms) op_ms[name] = ms;
            phases.push_back({{"ops", p.ops},
                              {"tiles", p.tiles},
                              {"slowest_thread_ms", p.slowest_thread_ms},
                              {"all_tiles_ms", p.all_tiles_ms},
                              {"op_ms", op_ms}});
        }
        const nlohmann::ordered_json report = {
            {"model", options.model_path},
            {"batch", options.run.batch},
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
    fmt::print("batch          {}\n", options.run.batch);
    fmt::print(
        "emulated       the {}-thread plan, its tiles run one after another on one thread, in its CPU time ({} runs);\n"
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
    fmt::print("phases         tiles  slowest thread ms  all tiles ms  ops\n");
    for (std::size_t i = 0; i < e.phases.size(); ++i)
        fmt::print("  {:>3}          {:>5}  {:>17.3f}  {:>12.3f}  {}\n", i, e.phases[i].tiles,
                   e.phases[i].slowest_thread_ms, e.phases[i].all_tiles_ms, e.phases[i].ops);
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("bench", "Time the model on random input, against this machine's matmul peak");
    auto options = std::make_shared<BenchOptions>();
    add_model_option(*command, options->model_path);
    add_run_options(*command, options->run);
    add_bounded_option(*command, "--streams,-s", options->streams, "Streams (0 = chosen for the hint)", 0);
    command->add_option("--hint", options->hint, "latency: one stream; throughput: several streams")
        ->capture_default_str()
        ->check(CLI::IsMember({"latency", "throughput"}));
    add_bounded_option(*command, "--iters,-n", options->iterations, "Timed requests per stream at most", 1);
    add_bounded_option(*command, "--warmup,-w", options->warmup, "Untimed runs first", 0);
    add_bounded_option(*command, "--max-seconds", options->max_seconds,
                       "Stop timing after this long (at least one run)", 0.0);
    command->add_option("--input,-i", options->inputs,
                        "Time on these images (files or directories) instead of random pixels; their decoding and "
                        "preprocessing is timed apart");
    command->add_flag("--json", options->json, "One JSON object instead of text");
    command
        ->add_option("--emulate-threads", options->emulate_threads,
                     "Time the plan for this many threads on one thread, phase by phase (no real run)")
        ->check(at_least(1));
    command->callback([options] { options->emulate_threads > 0 ? bench_emulated(*options) : bench(*options); });
}

}  // namespace onevit::cli
