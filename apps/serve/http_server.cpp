#include "http_server.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>

#include "log.hpp"
#include "onevit/error.hpp"

namespace onevit::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Beast reads as much as the buffer has room for: without room for 64 KiB a
// 600 KB tensor arrives 512 bytes a system call (docs/serve.md).
constexpr std::size_t kReadSize = 64 * 1024;

std::string peer_of(const tcp::socket& socket) {
    beast::error_code ec;
    const tcp::endpoint endpoint = socket.remote_endpoint(ec);
    return ec ? "unknown peer" : fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

bool client_went_away(const beast::error_code& ec) {
    return ec == http::error::partial_message || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == http::error::end_of_stream;
}

}  // namespace

// One connection: read a request (header, then body), hand it to the handler,
// write its response, and again while the client keeps the connection alive.
// Every step runs on the connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(tcp::socket socket, HttpServer& server)
        : stream_(std::move(socket)), server_(server), peer_(peer_of(stream_.socket())) {
        buffer_.reserve(kReadSize);
    }
    ~HttpSession() { server_.forget(this); }

    void start() { wait_for_request(); }
    auto stream_executor() { return stream_.get_executor(); }

    // On the strand: a connection waiting for its next request closes now.
    void close_if_idle() {
        if (state_ == State::idle) close();
    }

private:
    enum class State { idle, reading, handling, writing, closed };

    void wait_for_request() {
        if (server_.stopping()) return close();
        state_ = State::idle;
        if (buffer_.size() > 0) return read_header();  // the client sent the next request already
        stream_.expires_after(server_.limits_.idle_timeout);
        stream_.async_read_some(buffer_.prepare(kReadSize),
                                [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                                    // Idle too long, the client closed, or close_if_idle() ran first
                                    // (then what arrived meanwhile was never accepted: no answer).
                                    if (ec || self->state_ == State::closed) return self->close();
                                    self->buffer_.commit(bytes);
                                    self->read_header();
                                });
    }

    void read_header() {
        state_ = State::reading;
        keep_alive_ = false;
        deadline_ = std::chrono::steady_clock::now() + server_.limits_.request_timeout;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.max_header_bytes));
        parser_->body_limit(server_.limits_.max_body_bytes);
        stream_.expires_at(deadline_);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (ec) return self->failed_read(ec);
                                    self->on_header();
                                });
    }

    void on_header() {
        keep_alive_ = parser_->get().keep_alive();
        if (std::optional<HttpResponse> refusal =
                server_.handler_.screen(parser_->get().base(), peer_, parser_->get().body()))
            return write(std::move(*refusal), true);  // the body stays unread: the connection closes
        if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
            // curl and others wait for this before sending a large body.
            auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
            http::async_write(stream_, *interim,
                              [self = shared_from_this(), interim](beast::error_code ec, std::size_t) {
                                  if (ec) return self->close();
                                  self->read_body();
                              });
            return;
        }
        read_body();
    }

    void read_body() {
        if (parser_->is_done()) return dispatch();
        stream_.expires_at(deadline_);
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->failed_read(ec);
            self->dispatch();
        });
    }

    void failed_read(const beast::error_code& ec) {
        if (ec == beast::error::timeout) {
            // Beast closed the socket: nothing can be answered.
            log_line(fmt::format("dropped {}: its request did not arrive whole within {} s", peer_,
                                 std::chrono::duration<double>(server_.limits_.request_timeout).count()));
            return close();
        }
        if (client_went_away(ec)) {
            log_line(fmt::format("{} closed the connection in the middle of a request", peer_));
            return close();
        }
        if (ec == kNoFreeSlot && parser_->get().body().pool)
            return write(server_.handler_.refusal(http::status::service_unavailable,
                                                  parser_->get().body().pool->full_message(), peer_),
                         true);
        if (ec == http::error::header_limit)
            return write(server_.handler_.refusal(http::status::request_header_fields_too_large,
                                                  fmt::format("the request's header is over the limit of {} bytes",
                                                              server_.limits_.max_header_bytes),
                                                  peer_),
                         true);
        if (ec == http::error::body_limit)
            return write(server_.handler_.refusal(http::status::payload_too_large,
                                                  fmt::format("the request's body is over the limit of {} bytes "
                                                              "(--max-body-bytes)",
                                                              server_.limits_.max_body_bytes),
                                                  peer_),
                         true);
        if (ec.category() == http::make_error_code(http::error::bad_target).category())
            return write(
                server_.handler_.refusal(http::status::bad_request, "malformed HTTP request: " + ec.message(), peer_),
                true);
        close();  // a socket error: nobody to answer
    }

    void dispatch() {
        state_ = State::handling;
        stream_.expires_never();  // the model's time is not the client's
        auto self = shared_from_this();
        server_.handler_.handle(parser_->release(), peer_, [self](HttpResponse response) {
            asio::post(self->stream_.get_executor(),
                       [self, response = std::move(response)]() mutable { self->write(std::move(response), false); });
        });
    }

    void write(HttpResponse response, bool close_after) {
        state_ = State::writing;
        response.set(http::field::server, "onevit");
        response.keep_alive(!close_after && !server_.stopping() && keep_alive_);
        response.prepare_payload();
        response_ = std::make_shared<HttpResponse>(std::move(response));
        stream_.expires_after(server_.limits_.request_timeout);
        http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            const bool keep_alive = self->response_->keep_alive();
            self->response_.reset();
            if (ec || !keep_alive) return self->close();
            self->wait_for_request();
        });
    }

    void close() {
        if (state_ == State::closed) return;
        state_ = State::closed;
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    HttpServer& server_;
    const std::string peer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<HttpBody>> parser_;
    std::shared_ptr<HttpResponse> response_;  // being written
    State state_ = State::idle;
    bool keep_alive_ = false;  // what the request being answered asked for
    std::chrono::steady_clock::time_point deadline_;
};

HttpServer::HttpServer(const std::string& host, int port, const HttpLimits& limits, HttpHandler& handler, int threads)
    : limits_(limits),
      handler_(handler),
      thread_count_(threads),
      acceptor_(asio::make_strand(io_)),
      accept_retry_(acceptor_.get_executor()) {
    beast::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (ec) throw Error(fmt::format("--host {}: not an IP address ({})", host, ec.message()));
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw Error(fmt::format("cannot listen for HTTP on {}:{}: {}", host, port, ec.message()));
    port_ = acceptor_.local_endpoint().port();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    work_.emplace(io_.get_executor());
    asio::post(acceptor_.get_executor(), [this] { accept(); });
    for (int i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { io_.run(); });
}

void HttpServer::accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
            // Out of file descriptors, say: try again shortly rather than spin.
            log_line("cannot accept a connection: " + ec.message());
            accept_retry_.expires_after(std::chrono::milliseconds(50));
            accept_retry_.async_wait([this](beast::error_code wait_ec) {
                if (!wait_ec) accept();
            });
            return;
        }
        std::shared_ptr<HttpSession> session;
        {
            std::lock_guard<std::mutex> lock(sessions_mutex_);
            if (int(sessions_.size()) < limits_.max_connections) {
                session = std::make_shared<HttpSession>(std::move(socket), *this);
                sessions_.emplace(session.get(), session);
            }
        }
        if (session)
            asio::post(session->stream_executor(), [session] { session->start(); });
        else
            refuse_connection(std::move(socket));
        accept();
    });
}

void HttpServer::refuse_connection(tcp::socket socket) {
    auto response = std::make_shared<HttpResponse>(handler_.refusal(
        http::status::service_unavailable,
        fmt::format("the server is at its limit of {} connections", limits_.max_connections), peer_of(socket)));
    response->set(http::field::server, "onevit");
    response->keep_alive(false);
    response->prepare_payload();
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    stream->expires_after(limits_.request_timeout);
    http::async_write(*stream, *response, [stream, response](beast::error_code, std::size_t) {
        beast::error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
    });
}

void HttpServer::forget(HttpSession* session) {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    sessions_.erase(session);
    if (sessions_.empty()) sessions_closed_.notify_all();
}

void HttpServer::stop_accepting() {
    stopping_ = true;
    asio::post(acceptor_.get_executor(), [this] {
        beast::error_code ignored;
        acceptor_.close(ignored);
        accept_retry_.cancel();
    });
    std::vector<std::shared_ptr<HttpSession>> open;
    {
        std::lock_guard<std::mutex> lock(sessions_mutex_);
        for (auto& [raw, weak] : sessions_)
            if (std::shared_ptr<HttpSession> session = weak.lock()) open.push_back(std::move(session));
    }
    // Outside the lock: the last reference to a session may be dropped here, and its
    // destructor takes the lock.
    for (std::shared_ptr<HttpSession>& session : open)
        asio::post(session->stream_executor(), [session] { session->close_if_idle(); });
}

bool HttpServer::wait_closed(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(sessions_mutex_);
    return sessions_closed_.wait_until(lock, deadline, [this] { return sessions_.empty(); });
}

void HttpServer::stop() {
    stopping_ = true;
    work_.reset();
    io_.stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
}

}  // namespace onevit::serve
