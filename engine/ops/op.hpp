// The protocol every op follows. An op is planned once per (model, batch
// size): its primitives created, its activations bound. A run splits its work
// into independent tasks; any thread of the executor may run any task, with
// that thread's own stream, oneDNN scratchpad and workspace (ThreadMemory).
// The Schedule runs ops: op by op, or — where every op of a list reads and
// writes only the rows of its own tasks — as one chain of row tiles.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/thread_memory.hpp"

namespace onevit {

// A piece [begin, begin + size) of a range that is split into tiles.
struct Range {
    int begin = 0;
    int size = 0;
    bool operator==(const Range& other) const { return begin == other.begin && size == other.size; }
};

// What a task runs with: the executing thread's slot and its resources.
struct TaskContext {
    int slot = 0;
    dnnl::stream& stream;
    const dnnl::memory& scratchpad;  // oneDNN's (user scratchpad mode)
    char* workspace;                 // the op's workspace_bytes(), 64-byte aligned
};

// An op is what its constructor plans — its name, what each thread needs
// while it runs a task, its row tiles — and what it does: run(task) (with
// start() before each run and bind() once, where it needs them).
class Op {
public:
    virtual ~Op() = default;

    // Says what it is in profiles and emulated phases: "blocks.3.mlp.fc1", "attention".
    const std::string& name() const { return name_; }
    // What each thread needs while it runs one of the tasks.
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }
    std::size_t workspace_bytes() const { return workspace_bytes_; }
    // Where task t reads and writes only rows row_tiles()[t] (of every operand): those rows. Otherwise empty.
    const std::vector<Range>& row_tiles() const { return row_tiles_; }

    // One task per row tile, unless the op's tasks are not row tiles.
    virtual int tasks() const { return static_cast<int>(row_tiles_.size()); }
    virtual void run(int task, TaskContext& context) = 0;
    // Called before each run's tasks, on the calling thread.
    virtual void start() {}
    // Once, before the first run: for ops that bind oneDNN memory to the threads' workspaces.
    virtual void bind(const ThreadMemory&) {}

protected:
    explicit Op(std::string name) : name_(std::move(name)) {}

    // Set by the constructor.
    std::size_t scratchpad_bytes_ = 0;
    std::size_t workspace_bytes_ = 0;
    std::vector<Range> row_tiles_;

private:
    std::string name_;
};

// A primitive bound to its memory, executed with the running thread's scratchpad.
struct BoundPrimitive {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;

    BoundPrimitive() = default;
    BoundPrimitive(dnnl::primitive p, std::unordered_map<int, dnnl::memory> a)
        : primitive(std::move(p)), args(std::move(a)) {
        args[DNNL_ARG_SCRATCHPAD] = dnnl::memory();  // the key exists: no allocation per execution
    }
    void execute(TaskContext& context) {
        args[DNNL_ARG_SCRATCHPAD] = context.scratchpad;
        primitive.execute(context.stream, args);
    }
};

// A primitive descriptor's attributes: every primitive takes a user
// scratchpad, so any thread may execute it with its own. Every primitive is
// created through here, which also checks it is created single-threaded
// (Executor::require_inside_run).
dnnl::primitive_attr user_scratchpad_attr();

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Splits total into parts ranges whose sizes differ by at most one.
std::vector<Range> split_evenly(int total, int parts);
// Splits total into tiles of `tile` (the last one shorter).
std::vector<Range> split_by(int total, int tile);

// Time of a parallel phase with `tasks` equal tiles statically spread over
// `threads`, in units of tile work plus a fixed per-tile overhead: what the
// tilings minimise.
inline double phase_cost(int tasks, int threads, double tile_work, double tile_overhead) {
    return ceil_div(tasks, threads) * (tile_work + tile_overhead);
}

inline dnnl::memory::desc strided_md(dnnl::memory::dims dims, dnnl::memory::dims strides,
                                     dnnl::memory::data_type type = dnnl::memory::data_type::f32) {
    return dnnl::memory::desc(dims, type, strides);
}

}  // namespace onevit
