// Everything `onevit serve` is told on its command line (serve_command.cpp
// documents each option).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace onevit::serve {

struct ServeOptions {
    std::string model_path;
    std::string name;  // empty: the model file's stem
    std::string host = "127.0.0.1";
    int http_port = 8000;
    int grpc_port = 8001;
    std::string precision;  // empty: the file's (as every command)
    std::string hint = "throughput";
    int threads = 0;
    int streams = 0;
    int max_batch = 8;
    int max_queue_delay_us = 0;
    int max_queue = 256;  // images
    std::string api_key_file;
    std::size_t max_body_bytes = 64u << 20;
    std::size_t max_header_bytes = 16u << 10;
    std::int64_t max_image_pixels = 40'000'000;
    int max_connections = 256;
    double idle_timeout_s = 60;
    double request_timeout_s = 30;
    double shutdown_timeout_s = 60;
    int http_threads = 2;
    int decode_threads = 0;  // 0: as many as the model has threads
};

}  // namespace onevit::serve
