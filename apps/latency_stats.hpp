// Summary statistics of timed requests, as benchmark_app and
// onnxruntime_perf_test report them.
#pragma once

#include <vector>

namespace onevit::cli {

struct LatencyStats {
    int count = 0;
    double mean = 0;
    double min = 0;
    double p50 = 0;  // the median
    double p90 = 0;
    double p99 = 0;
    double max = 0;
};

// Percentiles interpolate linearly between the sorted samples (numpy's default).
// samples must not be empty.
LatencyStats latency_stats(std::vector<double> samples);

}  // namespace onevit::cli
