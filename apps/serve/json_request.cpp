#include "json_request.hpp"

#include <fmt/format.h>

#include <optional>

#include "request_error.hpp"

namespace onevit::serve {

namespace {

using json = nlohmann::json;

// nlohmann's SAX interface: builds the document as its own DOM parser would,
// except at inputs[i].data, whose values are captured flat.
class RequestSax : public nlohmann::json_sax<json> {
public:
    explicit RequestSax(JsonRequest& out) : out_(out) {}

    bool null() override { return value(json(nullptr)); }
    bool boolean(bool v) override { return value(json(v)); }
    bool number_integer(number_integer_t v) override { return capturing() ? number(double(v)) : value(json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return capturing() ? number(double(v)) : value(json(v)); }
    bool number_float(number_float_t v, const string_t&) override { return capturing() ? number(v) : value(json(v)); }
    bool string(string_t& v) override {
        if (!capturing()) return value(json(std::move(v)));
        capture_->strings.push_back(std::move(v));
        return end_scalar_capture();
    }
    bool binary(binary_t&) override { return fail("binary values are not JSON"); }

    bool start_object(std::size_t) override {
        if (capturing())
            return fail(fmt::format("inputs[{}].data holds an object; data is numbers or strings", input_));
        return open(json::object());
    }
    bool key(string_t& k) override {
        // The "data" of an input: [root, inputs, input] on the stack, below root's key "inputs".
        if (k == "data" && stack_.size() == 3 && stack_[1].key == "inputs" && stack_[1].value->is_array()) {
            input_ = stack_[1].value->size() - 1;
            if (out_.data.size() <= input_) out_.data.resize(input_ + 1);
            capture_ = &out_.data[input_];
            if (capture_->present) return fail(fmt::format("inputs[{}] has two data members", input_));
            capture_->present = true;
            capture_depth_ = 0;
            return true;
        }
        pending_key_ = std::move(k);
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override {
        if (capturing()) {
            if (stack_.size() + ++capture_depth_ > kMaxJsonDepth) return too_deep();
            return true;
        }
        return open(json::array());
    }
    bool end_array() override {
        if (capturing()) {
            if (--capture_depth_ == 0) capture_ = nullptr;
            return true;
        }
        return close();
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
        // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." without the bracket.
        std::string what = e.what();
        const std::size_t bracket = what.find("] ");
        return fail("malformed JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
    }

    const std::optional<std::string>& error() const { return error_; }

private:
    struct Frame {
        json* value;
        std::string key;  // the key this container has in its parent object
    };

    bool capturing() const { return capture_ != nullptr; }

    bool number(double v) {
        capture_->numbers.push_back(static_cast<float>(v));
        return end_scalar_capture();
    }
    // A scalar "data": 5 is a whole capture; inside arrays the array's end ends it.
    bool end_scalar_capture() {
        if (capture_depth_ == 0) capture_ = nullptr;
        return true;
    }

    bool value(json v) {
        if (capturing())
            return fail(fmt::format("inputs[{}].data holds a {}; data is numbers or strings", input_, v.type_name()));
        place(std::move(v));
        return true;
    }
    json* place(json v) {
        if (stack_.empty()) {
            out_.document = std::move(v);
            return &out_.document;
        }
        json& parent = *stack_.back().value;
        if (parent.is_array()) {
            parent.push_back(std::move(v));
            return &parent.back();
        }
        json& member = parent[pending_key_];
        member = std::move(v);
        return &member;
    }
    bool open(json container) {
        if (stack_.size() + 1 > kMaxJsonDepth) return too_deep();
        std::string key = stack_.empty() || stack_.back().value->is_array() ? std::string() : pending_key_;
        json* placed = place(std::move(container));
        stack_.push_back({placed, std::move(key)});
        return true;
    }
    bool close() {
        stack_.pop_back();
        return true;
    }
    bool too_deep() { return fail(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth)); }
    bool fail(std::string message) {
        if (!error_) error_ = std::move(message);
        return false;
    }

    JsonRequest& out_;
    std::vector<Frame> stack_;
    std::string pending_key_;
    JsonTensorData* capture_ = nullptr;
    std::size_t capture_depth_ = 0;
    std::size_t input_ = 0;
    std::optional<std::string> error_;
};

}  // namespace

JsonRequest parse_json_request(std::string_view text) {
    JsonRequest request;
    RequestSax sax(request);
    const bool parsed = json::sax_parse(text.begin(), text.end(), &sax);
    if (!parsed) throw RequestError(Status::bad_request, sax.error().value_or("malformed JSON"));
    return request;
}

}  // namespace onevit::serve
