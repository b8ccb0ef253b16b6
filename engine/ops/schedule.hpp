// Runs ops on an executor's threads, each task with the running thread's own
// memory (ThreadMemory). A list of ops whose row tiles agree — each tile of an
// op reads only rows that the same tile of the ops before it wrote — runs as
// one parallel phase, each thread carrying its rows through all of them: one
// barrier, not one per op, and the rows stay in its cache. Otherwise op by op.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "ops/op.hpp"
#include "runtime/executor.hpp"
#include "runtime/thread_memory.hpp"

namespace onevit {

// The row tiles of the ops that chain: one per thread, each split further where
// it would hold more rows than fit the core's L2 (a tile's rows then stay in L2
// from one op of the chain to the next). Every op of a chain takes these.
std::vector<Range> chain_tiles(int rows, int threads);

// One parallel phase of an emulated run: its ops, tiles, the time of each
// thread's share of the tiles, run one after another on one core, and each
// op's time over all tiles (a chain's tiles timed op by op, in the chain).
struct EmulatedPhase {
    std::string ops;  // the ops' names, joined by " + "
    int tiles = 0;
    std::vector<double> share_ms;
    std::vector<std::string> op_names;
    std::vector<double> op_ms;  // by op_names; empty unless the run times its ops
};
// One emulated run. Timing an op costs two reads of the thread's CPU clock (a
// system call on some VMs), so a run that times its ops (time_ops) gives the
// per-op breakdown and one that does not gives the phases' times.
struct EmulatedRun {
    bool time_ops = false;
    std::vector<EmulatedPhase> phases;
};

class Schedule {
public:
    Schedule(Executor& executor, const ThreadMemory& memory) : executor_(executor), memory_(memory) {}

    // Inside Executor::run. Null ops are skipped.
    void run(std::initializer_list<Op*> ops) { run(std::vector<Op*>(ops)); }
    void run(const std::vector<Op*>& ops);

    // Emulation of a many-core plan on one thread (onevit bench --emulate-threads):
    // the ops were planned for memory.slots() threads; each phase's tiles run on
    // the calling thread, share by share as the executor's static partition
    // would hand them out, and each share is timed in the thread's CPU time.
    void emulate_into(EmulatedRun* run) { emulated_ = run; }

private:
    // ops: one op (tiles = its tasks) or a chain (tiles = the row tiles they share).
    void run_phase(const std::vector<Op*>& ops, int tiles);
    // op_ms: where emulating, each op's CPU time is added to it.
    void run_tile(const std::vector<Op*>& ops, int tile, int slot, double* op_ms = nullptr);

    Executor& executor_;
    const ThreadMemory& memory_;
    EmulatedRun* emulated_ = nullptr;
};

}  // namespace onevit
