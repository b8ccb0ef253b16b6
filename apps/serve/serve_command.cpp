// `onevit serve`: the command line of the server (server.hpp runs it).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <memory>

#include "../commands.hpp"
#include "../run_options.hpp"
#include "onevit/error.hpp"
#include "server.hpp"

namespace onevit::cli {

void add_serve_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("serve", "Serve the model over the Open Inference Protocol (KServe v2): HTTP/REST and gRPC");
    auto o = std::make_shared<serve::ServeOptions>();
    command->add_option("--model,-m", o->model_path, "Model file (.ovit)")->required();
    command->add_option("--name", o->name, "The model's name in the protocol (default: the file's stem)");
    command->add_option("--host", o->host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
    command->add_option("--http-port", o->http_port, "HTTP/REST port (0: any free port, logged)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    command->add_option("--grpc-port", o->grpc_port, "gRPC port (0: any free port, logged)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    add_precision_option(*command, o->precision);
    command->add_option("--hint", o->hint, "latency: one stream; throughput: several streams")
        ->capture_default_str()
        ->check(CLI::IsMember({"latency", "throughput"}));
    add_threads_option(*command, o->threads);
    command->add_option("--streams,-s", o->streams, "Streams (0 = chosen for the hint and --max-batch)")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--max-batch", o->max_batch, "Images per model run at most (a request may have as many)")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    command
        ->add_option("--max-queue-delay-us", o->max_queue_delay_us,
                     "How long a request may wait for others to fill its batch (0: never waits)")
        ->capture_default_str()
        ->check(at_least(0));
    command->add_option("--max-queue", o->max_queue, "Images waiting for a stream at most; beyond: 503 / UNAVAILABLE")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_option("--api-key-file", o->api_key_file,
                        "Require 'Authorization: Bearer KEY' (KEY: the file's first line) on every endpoint but "
                        "liveness");
    command->add_option("--max-body-bytes", o->max_body_bytes, "Largest request body (HTTP) or message (gRPC)")
        ->capture_default_str()
        ->check(at_least(std::size_t(1024)));
    command->add_option("--max-header-bytes", o->max_header_bytes, "Largest request header (HTTP) or metadata (gRPC)")
        ->capture_default_str()
        ->check(at_least(std::size_t(1024)));
    command
        ->add_option("--max-image-pixels", o->max_image_pixels,
                     "Largest image to decode, in pixels (larger ones are refused before decoding)")
        ->capture_default_str()
        ->check(at_least(std::int64_t(1)));
    command->add_option("--max-connections", o->max_connections, "Open HTTP connections at most; beyond: 503")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_option("--idle-timeout-s", o->idle_timeout_s, "Close a connection idle this long")
        ->capture_default_str()
        ->check(at_least(0.001));
    command
        ->add_option("--request-timeout-s", o->request_timeout_s,
                     "Drop an HTTP client whose request has not arrived whole within this time")
        ->capture_default_str()
        ->check(at_least(0.001));
    command
        ->add_option("--shutdown-timeout-s", o->shutdown_timeout_s,
                     "On SIGTERM/SIGINT, wait this long at most for the accepted requests")
        ->capture_default_str()
        ->check(at_least(0.0));
    command->add_option("--http-threads", o->http_threads, "Threads for HTTP I/O")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    command
        ->add_option("--decode-threads", o->decode_threads,
                     "Threads decoding images (0: as many as the model's threads)")
        ->capture_default_str()
        ->check(at_least(0));
    command->callback([o] {
        if (o->max_queue < o->max_batch)
            throw Error(fmt::format("--max-queue {} must be at least --max-batch {}: a full request must fit",
                                    o->max_queue, o->max_batch));
        Options model_options;
        model_options.threads = o->threads;
        model_options.streams = o->streams;
        model_options.hint = o->hint == "latency" ? Hint::latency : Hint::throughput;
        model_options.precision = resolve_precision(o->precision);
        model_options.batch = o->max_batch;
        const int status = serve::serve(*o, model_options, ONEVIT_VERSION);
        if (status != 0) throw CLI::RuntimeError(status);
    });
}

}  // namespace onevit::cli
