// emulate_forward (model/emulate.hpp): a T-thread plan, timed on one thread.
#include "model/emulate.hpp"

#include <algorithm>
#include <optional>
#include <random>

#include "model/open_model_file.hpp"
#include "model/vit.hpp"
#include "onevit/error.hpp"
#include "runtime/dnnl_errors.hpp"
#include "runtime/executor.hpp"

namespace onevit {

EmulatedForward emulate_forward(const std::string& model_path, int batch, int threads, int runs, Precision precision) {
    if (batch < 1 || threads < 1 || runs < 1)
        throw Error("emulation needs batch, threads and runs >= 1, got " + std::to_string(batch) + ", " +
                    std::to_string(threads) + ", " + std::to_string(runs));
    const ModelFile file = open_model_file(model_path);
    const Architecture& a = file.info().arch;
    return translating_dnnl_errors(model_path, [&] {
        const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
        Executor loader(engine, 0);
        std::optional<VitWeights> weights;
        loader.run([&] { weights.emplace(file, loader, threads, precision); });  // tuned for T threads

        std::mt19937 generator(20240601);
        std::normal_distribution<float> pixel(0.f, 1.f);
        std::vector<float> input(std::size_t(batch) * a.channels * a.image_height * a.image_width);
        for (float& value : input) value = pixel(generator);
        std::vector<float> logits(std::size_t(batch) * a.outputs());

        // One thread runs the T-thread plan, phase by phase (ops/schedule.hpp).
        Executor one_thread(engine, 1);
        // Runs that time the phases alternate with runs that time each op.
        std::vector<EmulatedRun> timed(runs), op_timed(runs);
        for (EmulatedRun& run : op_timed) run.time_ops = true;
        one_thread.run([&] {
            Forward forward(*weights, one_thread, batch, threads);
            forward.run(one_thread, input.data(), logits.data(), nullptr, nullptr);  // warm-up
            for (int r = 0; r < runs; ++r) {
                forward.run(one_thread, input.data(), logits.data(), nullptr, nullptr, &timed[r]);
                forward.run(one_thread, input.data(), logits.data(), nullptr, nullptr, &op_timed[r]);
            }
        });

        // Each share at its fastest over the runs: what other processes on a
        // shared machine add (preemption, evicted caches) only ever slows a run.
        EmulatedForward result{a, threads, batch, runs, 0, 0, {}};
        const std::vector<EmulatedPhase>& first = timed.front().phases;
        for (std::size_t p = 0; p < first.size(); ++p) {
            std::vector<double> share_ms = first[p].share_ms;
            for (const auto& run : timed)
                for (std::size_t s = 0; s < share_ms.size(); ++s)
                    share_ms[s] = std::min(share_ms[s], run.phases[p].share_ms[s]);
            EmulatedPhaseTime phase{first[p].ops, first[p].tiles, 0, 0, {}};
            for (std::size_t o = 0; o < first[p].op_names.size(); ++o) {
                double fastest = op_timed.front().phases[p].op_ms[o];
                for (const auto& run : op_timed) fastest = std::min(fastest, run.phases[p].op_ms[o]);
                phase.op_ms.emplace_back(first[p].op_names[o], fastest);
            }
            for (double ms : share_ms)
                phase.slowest_thread_ms = std::max(phase.slowest_thread_ms, ms), phase.all_tiles_ms += ms;
            result.phases.push_back(phase);
            result.latency_ms += phase.slowest_thread_ms;
            result.work_ms += phase.all_tiles_ms;
        }
        return result;
    });
}

}  // namespace onevit
