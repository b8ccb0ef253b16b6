// The measurement behind onevit serve's choice of HTTP library (docs/serve.md):
// the same trivial endpoint on cpp-httplib 0.11 and on Boost.Beast, each taking a
// request body (an image tensor: 602,112 bytes for 3x224x224 floats) and answering
// 4,000 bytes (1,000 logits), so that wrk can time what the transport itself costs
// per request in CPU and in latency, with no model behind it.
//
//   bench/serve/compare_transports.sh      (builds this, runs both under wrk)
//   build/bench/serve_transports httplib|beast PORT [IO_THREADS]
//
// Prints the process's CPU time per request when stopped (SIGINT/SIGTERM).
#include <httplib.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

const std::string kResponse(4000, 'x');
constexpr std::size_t kReadSize = 64 * 1024;
std::atomic<long> requests{0};

double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void report() {
    const long n = requests.load();
    std::printf("%ld requests, %.1f us CPU per request (server process)\n", n, n ? 1e6 * cpu_seconds() / n : 0.0);
}

int run_httplib(int port) {
    httplib::Server server;
    server.set_keep_alive_max_count(1000000);
    server.Post("/echo", [](const httplib::Request& request, httplib::Response& response) {
        if (request.body.size() < 1000) response.status = 400;
        ++requests;
        response.set_content(kResponse, "application/octet-stream");
    });
    std::thread stopper([&] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        int signal = 0;
        sigwait(&set, &signal);
        server.stop();
    });
    server.listen("127.0.0.1", port);
    stopper.join();
    report();
    return 0;
}

// One connection: read a request, answer, repeat (the shape of onevit serve's sessions).
class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(asio::ip::tcp::socket socket) : stream_(std::move(socket)) {
        buffer_.reserve(kReadSize);  // Beast reads what the buffer holds: 512 bytes a call otherwise
    }
    void start() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(64 << 20);
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->answer();
        });
    }
    void answer() {
        const auto& request = parser_->get();
        response_ = {};
        response_.version(request.version());
        response_.keep_alive(request.keep_alive());
        response_.result(request.body().size() < 1000 ? http::status::bad_request : http::status::ok);
        response_.set(http::field::content_type, "application/octet-stream");
        response_.body() = kResponse;
        response_.prepare_payload();
        ++requests;
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (!ec) self->read();
        });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
};

void accept(asio::ip::tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](beast::error_code ec, asio::ip::tcp::socket socket) {
        if (ec) return;
        std::make_shared<Session>(std::move(socket))->start();
        accept(acceptor);
    });
}

int run_beast(int port, int threads) {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    accept(acceptor);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { io.stop(); });
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
    io.run();
    for (std::thread& t : pool) t.join();
    report();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s httplib|beast PORT [IO_THREADS]\n", argv[0]);
        return 2;
    }
    const std::string which = argv[1];
    const int port = std::atoi(argv[2]);
    if (which == "httplib") {
        sigset_t set;  // the stopper thread takes them with sigwait
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        return run_httplib(port);
    }
    if (which == "beast") return run_beast(port, argc > 3 ? std::atoi(argv[3]) : 1);
    std::fprintf(stderr, "unknown transport '%s'\n", which.c_str());
    return 2;
}
