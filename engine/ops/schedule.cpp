#include "ops/schedule.hpp"

#include <algorithm>

#include "runtime/cpu_caches.hpp"
#include "runtime/thread_cpu_clock.hpp"

namespace onevit {

namespace {

bool same_row_tiles(const std::vector<Op*>& ops) {
    const std::vector<Range>& first = ops.front()->row_tiles();
    if (first.empty()) return false;
    for (const Op* op : ops)
        if (op->row_tiles() != first) return false;
    return true;
}

// At most the core's L2 over 4 KiB rows (1,024 floats, an MLP hidden row's
// order), and never under 64 rows: each tile streams its layers' weights once
// more (docs/performance.md, "Chain tiles").
int max_chain_tile_rows() {
    static const int rows = std::max<int>(64, static_cast<int>(l2_cache_bytes() / 4096));
    return rows;
}

}  // namespace

std::vector<Range> chain_tiles(int rows, int threads) {
    const int per_thread = std::max(1, std::min(rows, threads));
    const int splits = ceil_div(ceil_div(rows, per_thread), max_chain_tile_rows());
    return split_evenly(rows, std::min(rows, per_thread * splits));
}

void Schedule::run(const std::vector<Op*>& all) {
    std::vector<Op*> ops;
    for (Op* op : all)
        if (op) ops.push_back(op);
    if (ops.empty()) return;
    for (Op* op : ops) op->start();
    if (ops.size() > 1 && same_row_tiles(ops)) return run_phase(ops, static_cast<int>(ops.front()->row_tiles().size()));
    for (Op* op : ops) run_phase({op}, op->tasks());
}

// A chain: tile t of every op in turn; a single op: its task t.
void Schedule::run_tile(const std::vector<Op*>& ops, int tile, int slot, double* op_ms) {
    TaskContext context{slot, executor_.stream(), memory_.scratchpad(slot), memory_.workspace(slot)};
    for (std::size_t i = 0; i < ops.size(); ++i) {
        const double start = op_ms ? thread_cpu_ms() : 0;
        ops[i]->run(tile, context);
        if (op_ms) op_ms[i] += thread_cpu_ms() - start;
    }
}

void Schedule::run_phase(const std::vector<Op*>& ops, int tiles) {
    if (!emulated_) {
        executor_.parallel(tiles, [&](int t) { run_tile(ops, t, Executor::slot()); });
        return;
    }
    EmulatedPhase phase;
    for (const Op* op : ops) {
        phase.ops += (phase.ops.empty() ? "" : " + ") + op->name();
        phase.op_names.push_back(op->name());
    }
    if (emulated_->time_ops) phase.op_ms.assign(ops.size(), 0.);
    phase.tiles = tiles;
    const int shares = std::min(tiles, memory_.slots());
    for (int share = 0, begin = 0; share < shares; ++share) {
        const int size = tiles / shares + (share < tiles % shares ? 1 : 0);
        const double start = thread_cpu_ms();
        for (int t = begin; t < begin + size; ++t)
            run_tile(ops, t, share, emulated_->time_ops ? phase.op_ms.data() : nullptr);
        phase.share_ms.push_back(thread_cpu_ms() - start);
        begin += size;
    }
    emulated_->phases.push_back(std::move(phase));
}

}  // namespace onevit
