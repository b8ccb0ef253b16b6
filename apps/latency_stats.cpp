#include "latency_stats.hpp"

#include <algorithm>
#include <cstddef>
#include <numeric>

namespace onevit::cli {

namespace {

// The q-th percentile (0..100) of sorted samples.
double percentile(const std::vector<double>& sorted, double q) {
    const double position = q / 100 * double(sorted.size() - 1);
    const std::size_t below = static_cast<std::size_t>(position);
    if (below + 1 >= sorted.size()) return sorted.back();
    return sorted[below] + (position - double(below)) * (sorted[below + 1] - sorted[below]);
}

}  // namespace

LatencyStats latency_stats(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    LatencyStats stats;
    stats.count = static_cast<int>(samples.size());
    stats.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / double(samples.size());
    stats.min = samples.front();
    stats.p50 = percentile(samples, 50);
    stats.p90 = percentile(samples, 90);
    stats.p99 = percentile(samples, 99);
    stats.max = samples.back();
    return stats;
}

}  // namespace onevit::cli
