// The HTTP/1.1 transport (Boost.Beast; docs/serve.md says why): a listener and
// one session per connection, all asynchronous on a few I/O threads, so a slow
// or idle client costs no thread. Limits: header and body size (checked before
// the body is read), the time a request may take to arrive whole (a client
// that trickles bytes is dropped), keep-alive idle time, and connections (over
// the limit: 503 at once). Malformed requests get a 400 and the connection
// closes; everything refused is logged as one line. A binary tensor is read
// straight into the image pool's slots (http_body.hpp); none free: 503.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_body.hpp"

namespace onevit::serve {

class Metrics;
class HttpSession;

struct HttpLimits {
    std::size_t max_body_bytes = 64 << 20;
    std::size_t max_header_bytes = 16 << 10;
    std::chrono::milliseconds idle_timeout{60'000};     // keep-alive connection with no request
    std::chrono::milliseconds request_timeout{30'000};  // first byte to last of a request; also a response's write
    int max_connections = 256;
};

using HttpRequest = boost::beast::http::request<HttpBody>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// The protocol behind the transport (http_routes.hpp).
class HttpHandler {
public:
    using Respond = std::function<void(HttpResponse)>;  // once, from any thread
    virtual ~HttpHandler() = default;
    // After the header, before the body is read: a response refuses the request (auth, path);
    // else it may set body.pool, where the body's binary data is to go.
    virtual std::optional<HttpResponse> screen(const HttpRequest::header_type& header, const std::string& peer,
                                               RequestBody& body) = 0;
    virtual void handle(HttpRequest request, const std::string& peer, Respond respond) = 0;
    // A request the transport itself refused (malformed, too large, over the connection limit).
    virtual HttpResponse refusal(boost::beast::http::status status, const std::string& message,
                                 const std::string& peer) = 0;
};

class HttpServer {
public:
    // Binds at once (port 0: any free port; see port()); throws onevit::Error if it cannot.
    HttpServer(const std::string& host, int port, const HttpLimits& limits, HttpHandler& handler, int threads);
    ~HttpServer();  // stop()

    int port() const { return port_; }
    void start();
    // Closes the listener and every idle connection; the others close once
    // their request is answered.
    void stop_accepting();
    bool stopping() const { return stopping_.load(); }
    // Whether every connection closed before the deadline.
    bool wait_closed(std::chrono::steady_clock::time_point deadline);
    // Stops the I/O threads (whatever is still open is dropped).
    void stop();

private:
    friend class HttpSession;
    void accept();
    void refuse_connection(boost::asio::ip::tcp::socket socket);
    void forget(HttpSession* session);

    // Declared first, destroyed last: sessions still in io_'s queue when it is
    // destroyed unregister themselves here.
    std::mutex sessions_mutex_;
    std::condition_variable sessions_closed_;
    std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;

    const HttpLimits limits_;
    HttpHandler& handler_;
    const int thread_count_;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    boost::asio::io_context io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer accept_retry_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::vector<std::thread> threads_;
};

}  // namespace onevit::serve
