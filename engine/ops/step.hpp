// One oneDNN primitive execution bound to its memory: the unit of work a TBB
// task runs. Steps are built once per (model, batch size); running one only
// swaps in the executing thread's scratchpad.
#pragma once

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/executor.hpp"

namespace onevit {

struct Step {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;
    // Optional, run right after primitive by the same thread: where primitive
    // writes a dense block of its own, the copy of that block into its place
    // (ops/linear's column tiles).
    dnnl::primitive then = {};
    std::unordered_map<int, dnnl::memory> then_args = {};
    // Optional, run after those by the same thread: a loop of ours over what
    // primitive wrote (ops/linear's int8 row epilogue).
    std::function<void()> after = {};
    // Instead of a primitive: a hand-written loop, for what oneDNN 2.6 has no
    // primitive for (e.g. quantizing rows with a scale per row).
    std::function<void()> kernel = {};
    // Optional, run last, in order, by the same thread: the rest of a tile
    // that runs as several steps (an int8 layer's row chunks, ops/linear.cpp).
    std::vector<Step> then_steps = {};

    void execute(dnnl::stream& stream, const dnnl::memory& scratchpad) {
        if (kernel) return kernel();
        args[DNNL_ARG_SCRATCHPAD] = scratchpad;  // the key exists already: no allocation
        primitive.execute(stream, args);
        if (then) {
            then_args[DNNL_ARG_SCRATCHPAD] = scratchpad;
            then.execute(stream, then_args);
        }
        if (after) after();
        for (Step& step : then_steps) step.execute(stream, scratchpad);
    }
};

// A piece [begin, begin + size) of a range that is split into tiles.
struct Range {
    int begin = 0;
    int size = 0;
    bool operator==(const Range& other) const { return begin == other.begin && size == other.size; }
};

// The steps one op runs for one batch, and the largest scratchpad among them
// (Forward gives every arena slot a scratchpad of the largest size of all).
class StepList {
public:
    std::vector<Step>& steps() { return steps_; }
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }
    // Where each step reads and writes only its own rows (of every operand):
    // those rows, one range per step; otherwise empty.
    const std::vector<Range>& row_tiles() const { return row_tiles_; }

protected:
    // scratchpad_bytes: what the step needs, the largest of its primitives'.
    void add(Step step, std::size_t scratchpad_bytes) {
        push(std::move(step), scratchpad_bytes);
        row_tiled_ = false;
        row_tiles_.clear();
    }
    void add_row_tile(Step step, std::size_t scratchpad_bytes, Range rows) {
        push(std::move(step), scratchpad_bytes);
        if (row_tiled_) row_tiles_.push_back(rows);
    }

private:
    void push(Step step, std::size_t scratchpad_bytes) {
        scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad_bytes);
        reserve_scratchpad_args(step);
        steps_.push_back(std::move(step));
    }
    static void reserve_scratchpad_args(Step& step) {  // filled in per execution
        step.args[DNNL_ARG_SCRATCHPAD] = dnnl::memory();
        if (step.then) step.then_args[DNNL_ARG_SCRATCHPAD] = dnnl::memory();
        for (Step& next : step.then_steps) reserve_scratchpad_args(next);
    }

    std::vector<Step> steps_;
    std::vector<Range> row_tiles_;
    bool row_tiled_ = true;
    std::size_t scratchpad_bytes_ = 0;
};

// A primitive descriptor's attributes: every primitive takes a user scratchpad,
// so any thread may execute it, given that thread's own scratchpad. Every
// primitive is created through here, so here we also check that it is created
// single-threaded (see Executor::require_inside_run).
inline dnnl::primitive_attr user_scratchpad_attr() {
    Executor::require_inside_run();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

// Splits total into parts ranges whose sizes differ by at most one.
inline std::vector<Range> split_evenly(int total, int parts) {
    std::vector<Range> ranges;
    int begin = 0;
    for (int p = 0; p < parts; ++p) {
        const int size = total / parts + (p < total % parts ? 1 : 0);
        ranges.push_back({begin, size});
        begin += size;
    }
    return ranges;
}

// Splits total into tiles of `tile` (the last one shorter).
inline std::vector<Range> split_by(int total, int tile) {
    std::vector<Range> ranges;
    for (int begin = 0; begin < total; begin += tile) ranges.push_back({begin, std::min(tile, total - begin)});
    return ranges;
}

// Time of a parallel phase with `tasks` equal tiles statically spread over
// `threads`, in units of tile work plus a fixed per-tile overhead. Used to pick
// tile counts: enough tiles to balance the threads, no more.
inline double phase_cost(int tasks, int threads, double tile_work, double tile_overhead) {
    const int rounds = (tasks + threads - 1) / threads;
    return rounds * (tile_work + tile_overhead);
}

inline dnnl::memory::desc strided_md(dnnl::memory::dims dims, dnnl::memory::dims strides) {
    return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

}  // namespace onevit
