// onevit serve's pieces below the transports: the streaming JSON request
// parser, the HTTP codec (JSON, binary tensor data, classification), raw BYTES,
// the API key, the metrics' text and the dynamic batcher on the bundled model.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api_key.hpp"
#include "digits_model_test.hpp"
#include "batcher.hpp"
#include "http_body.hpp"
#include "http_infer_codec.hpp"
#include "image_pool.hpp"
#include "json_request.hpp"
#include "metrics.hpp"
#include "model_spec.hpp"
#include "onevit/model.hpp"
#include "request_error.hpp"
#include "tensor_data.hpp"
#include "tiny_spec.hpp"

namespace onevit::serve {
namespace {

using json = nlohmann::json;

// The message of the RequestError that f throws ("" if it throws none).
template <class F>
std::string refusal(F&& f) {
    try {
        f();
    } catch (const RequestError& e) {
        EXPECT_EQ(e.status(), Status::bad_request);
        return e.what();
    }
    return "";
}

// Slots for the tiny model's images: what the codecs put pixels in.
ImagePool& tiny_pool() {
    static ImagePool pool(tiny_spec().image_floats() * sizeof(float), 16, 16);
    return pool;
}

std::string binary_request(const std::vector<float>& pixels, std::vector<int> shape, std::size_t* header_length) {
    const json header = {{"inputs",
                          {{{"name", "pixel_values"},
                            {"datatype", "FP32"},
                            {"shape", shape},
                            {"parameters", {{"binary_data_size", pixels.size() * 4}}}}}},
                         {"outputs", {{{"name", "logits"}, {"parameters", {{"binary_data", true}}}}}}};
    std::string body = header.dump();
    *header_length = body.size();
    body.append(reinterpret_cast<const char*>(pixels.data()), pixels.size() * 4);
    return body;
}

TEST(JsonRequest, DataIsCapturedFlatFromAnyNesting) {
    const JsonRequest r = parse_json_request(
        R"({"id": "a", "inputs": [{"name": "x", "data": [[1, 2.5], [-3e2, 4]], "shape": [2, 2]},
                                  {"name": "y", "data": ["p", "q"]}, {"name": "z", "data": 7}]})");
    ASSERT_EQ(r.data.size(), 3u);
    EXPECT_EQ(r.data[0].numbers, (std::vector<float>{1.f, 2.5f, -300.f, 4.f}));
    EXPECT_EQ(r.data[1].strings, (std::vector<std::string>{"p", "q"}));
    EXPECT_EQ(r.data[2].numbers, (std::vector<float>{7.f}));
    EXPECT_TRUE(r.data[0].present && r.data[1].present && r.data[2].present);
    // Everything but the data is the document, as a DOM parser gives it.
    EXPECT_EQ(r.document["id"], "a");
    EXPECT_EQ(r.document["inputs"][0]["shape"], json({2, 2}));
    EXPECT_FALSE(r.document["inputs"][0].contains("data"));
    EXPECT_EQ(r.document["inputs"][2]["name"], "z");
}

TEST(JsonRequest, DataOutsideInputsStaysInTheDocument) {
    const JsonRequest r = parse_json_request(R"({"outputs": [{"data": [1, 2]}], "data": {"inputs": 1}})");
    EXPECT_TRUE(r.data.empty());
    EXPECT_EQ(r.document["outputs"][0]["data"], json({1, 2}));
}

TEST(JsonRequest, FloatsAreTheNearestToTheText) {
    const float values[] = {0.1f, 1e-30f, FLT_MAX, std::numeric_limits<float>::denorm_min(), -2.7182817f};
    json data = json::array();
    for (float v : values) data.push_back(double(v));
    const JsonRequest r = parse_json_request(json{{"inputs", {{{"data", data}}}}}.dump());
    ASSERT_EQ(r.data[0].numbers.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(r.data[0].numbers[i], values[i]);
}

TEST(JsonRequest, RefusesWhatIsNotARequest) {
    EXPECT_NE(refusal([] { parse_json_request(R"({"inputs": [)"); }).find("malformed JSON"), std::string::npos);
    EXPECT_NE(refusal([] {
                  parse_json_request(std::string(100000, '[') + std::string(100000, ']'));
              }).find("nested deeper than 32"),
              std::string::npos);
    const std::string deep_data = R"({"inputs": [{"data": )" + std::string(40, '[') + std::string(40, ']') + "}]}";
    EXPECT_NE(refusal([&] { parse_json_request(deep_data); }).find("nested deeper"), std::string::npos);
    EXPECT_NE(refusal([] { parse_json_request(R"({"inputs": [{"data": [{"b64": "x"}]}]})"); }).find("object"),
              std::string::npos);
    EXPECT_NE(refusal([] { parse_json_request(R"({"inputs": [{"data": [true]}]})"); }).find("boolean"),
              std::string::npos);
    EXPECT_NE(refusal([] { parse_json_request(R"({"inputs": [{"data": [1], "data": [2]}]})"); }).find("two data"),
              std::string::npos);
}

TEST(HttpCodec, JsonAndBinaryRequestsGiveTheSamePixels) {
    const ModelSpec spec = tiny_spec();
    const std::vector<float> pixels = {0.25f, -1.5f, 3.f, 1e-7f, 5.f, 6.f, 7.f, 8.f};
    const InferenceRequest from_json =
        decode_http_infer(spec,
                          R"({"id": "r1", "inputs": [{"name": "pixel_values", "datatype": "FP32", "shape": [2, 1, 2, 2],
            "data": [[0.25, -1.5, 3, 1e-7], [5, 6, 7, 8]]}]})",
                          std::nullopt, tiny_pool());
    EXPECT_EQ(from_json.pixels.floats(), pixels);
    EXPECT_EQ(from_json.batch, 2);
    EXPECT_EQ(from_json.id, "r1");
    EXPECT_FALSE(from_json.output.binary);
    std::size_t header = 0;
    const std::string body = binary_request(pixels, {2, 1, 2, 2}, &header);
    const InferenceRequest from_binary = decode_http_infer(spec, body, header, tiny_pool());
    EXPECT_EQ(from_binary.pixels.floats(), pixels);
    EXPECT_TRUE(from_binary.output.binary);
}

TEST(HttpCodec, RefusesInconsistentBinaryData) {
    const ModelSpec spec = tiny_spec();
    std::size_t header = 0;
    const std::string body = binary_request(std::vector<float>(4, 1.f), {1, 1, 2, 2}, &header);
    EXPECT_NE(refusal([&] { decode_http_infer(spec, body, body.size() + 1, tiny_pool()); }).find("more than the body"),
              std::string::npos);
    EXPECT_NE(
        refusal([&] { decode_http_infer(spec, body.substr(0, body.size() - 1), header, tiny_pool()); }).find("binary"),
        std::string::npos);
    EXPECT_NE(refusal([&] { decode_http_infer(spec, body + "x", header, tiny_pool()); }).find("after the inputs"),
              std::string::npos);
    std::vector<float> nan_pixels(4, 1.f);
    nan_pixels[2] = std::nanf("");
    const std::string nan_body = binary_request(nan_pixels, {1, 1, 2, 2}, &header);
    EXPECT_NE(refusal([&] { decode_http_infer(spec, nan_body, header, tiny_pool()); }).find("finite"),
              std::string::npos);
}

// Slots are taken lowest first (the pages touched are those of the most images in
// flight at once), given back when their holder goes, and none free is a 503.
TEST(ImagePool, LowestSlotsFirstAndUnavailableWhenFull) {
    ImagePool pool(4 * sizeof(float), 3, 1);
    ImageSlots x(pool), y(pool);
    ASSERT_TRUE(x.add());  // slot 0
    ASSERT_TRUE(y.add());  // 1
    ASSERT_TRUE(x.add());  // 2: x's images are apart
    EXPECT_EQ(x.contiguous(), nullptr);
    EXPECT_EQ(y.contiguous(), y.image(0));
    EXPECT_EQ(x.bytes(1) - x.bytes(0), 2 * std::ptrdiff_t(4 * sizeof(float)));
    EXPECT_FALSE(y.add());
    const float image[4] = {1, 2, 3, 4};
    try {
        pool.copy_of(image, sizeof image);
        ADD_FAILURE() << "a full pool took an image";
    } catch (const RequestError& e) {
        EXPECT_EQ(e.status(), Status::unavailable);
        EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos);
    }
    x.clear();
    const ImageSlots copy = pool.copy_of(image, sizeof image);
    EXPECT_EQ(copy.bytes(0), y.bytes(0) - 4 * sizeof(float));  // slot 0 again
    EXPECT_EQ(copy.floats(), std::vector<float>(image, image + 4));
}

// Whether each page of [data, data + bytes) is resident (mincore).
std::vector<bool> resident(const char* data, std::size_t bytes) {
    const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> flags((bytes + page - 1) / page);
    EXPECT_EQ(::mincore(const_cast<char*>(data), bytes, flags.data()), 0);
    return std::vector<bool>(flags.begin(), flags.end());
}

// The warm slots are resident from the start; the pages past them a burst touched
// go back when nothing is in use, not before.
TEST(ImagePool, IdleTrimGivesBackWhatABurstTouched) {
    const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
    ImagePool pool(2 * page, 4, 1);
    ImageSlots burst(pool);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(burst.add());
        std::memset(burst.bytes(i), 1, 2 * page);
    }
    const char* first = burst.bytes(0);
    EXPECT_EQ(resident(first, 6 * page), std::vector<bool>(6, true));
    ImageSlots held(pool);
    ASSERT_TRUE(held.add());  // slot 3: in use, so no trim
    pool.trim();
    EXPECT_EQ(resident(first, 6 * page), std::vector<bool>(6, true));
    burst.clear();
    held.clear();
    pool.trim();
    EXPECT_EQ(resident(first, 8 * page), (std::vector<bool>{true, true, false, false, false, false, false, false}));
    ImageSlots again(pool);
    ASSERT_TRUE(again.add());
    EXPECT_EQ(again.bytes(0)[0], 1);  // the warm slot kept its pages
}

namespace http = boost::beast::http;

// Feeds bytes to the parser `chunk` at a time until they are used or it stops.
boost::system::error_code feed(http::request_parser<HttpBody>& parser, std::string_view bytes, std::size_t chunk) {
    boost::system::error_code ec;
    while (!bytes.empty() && !parser.is_done()) {
        const std::size_t n = parser.put(boost::asio::buffer(bytes.data(), std::min(chunk, bytes.size())), ec);
        if (ec == http::error::need_more && chunk < bytes.size()) {
            chunk = bytes.size();  // the header arrives whole
            ec = {};
            continue;
        }
        if (ec) return ec;
        bytes.remove_prefix(n);
    }
    return ec;
}

std::string http_message(const std::string& body, std::size_t header_length) {
    return fmt::format(
               "POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: {}\r\n"
               "Content-Length: {}\r\n\r\n",
               header_length, body.size()) +
           body;
}

// The transport's body: a binary tensor's images land in slots of their own as
// the bytes trickle in, and the request runs them where they landed.
TEST(HttpBody, BinaryTensorIsReadIntoSlotsAndRunFromThere) {
    const ModelSpec spec = tiny_spec();
    ImagePool pool(spec.image_floats() * sizeof(float), 4, 0);
    const std::vector<float> pixels = {0.25f, -1.5f, 3.f, 1e-7f, 5.f, 6.f, 7.f, 8.f};
    std::size_t header = 0;
    const std::string body = binary_request(pixels, {2, 1, 2, 2}, &header);
    const std::string message = http_message(body, header);
    const std::size_t head = message.size() - body.size();

    http::request_parser<HttpBody> parser;
    EXPECT_FALSE(feed(parser, std::string_view(message).substr(0, head), head));
    ASSERT_TRUE(parser.is_header_done());
    parser.get().body().pool = &pool;  // as the routes' screen() sets them
    parser.get().body().max_images = spec.max_batch;
    EXPECT_FALSE(feed(parser, std::string_view(message).substr(head), 3));
    ASSERT_TRUE(parser.is_done());
    RequestBody& read = parser.get().body();
    EXPECT_TRUE(read.split);
    EXPECT_EQ(read.text, body.substr(0, header));
    EXPECT_EQ(read.binary_bytes, pixels.size() * sizeof(float));
    ASSERT_EQ(read.binary.count(), 2);
    const float* landed = read.binary.image(0);
    const InferenceRequest request = decode_http_infer(spec, read, header, pool);
    EXPECT_EQ(request.pixels.floats(), pixels);
    EXPECT_EQ(request.pixels.image(0), landed);  // not copied
    EXPECT_NE(refusal([&] {
                  http::request_parser<HttpBody> cut;
                  feed(cut, std::string_view(message).substr(0, head), head);
                  cut.get().body().pool = &pool;
                  cut.get().body().max_images = spec.max_batch;
                  feed(cut, std::string_view(message).substr(head, header + 5), 1);
                  decode_http_infer(spec, cut.get().body(), header, pool);
              }).find("binary_data_size 32 but 5 bytes"),
              std::string::npos);
}

// Encoded images (BYTES) are not a tensor of whole images: they take no slot, however
// many they would fill, and the body stays text.
TEST(HttpBody, EncodedImagesStayText) {
    const ModelSpec spec = tiny_spec();
    ImagePool pool(spec.image_floats() * sizeof(float), 1, 0);
    std::string files;
    append_string_bytes({"a file", "another file"}, files);
    const json header = {{"inputs",
                          {{{"name", "image"},
                            {"datatype", "BYTES"},
                            {"shape", {2}},
                            {"parameters", {{"binary_data_size", files.size()}}}}}}};
    const std::string body = header.dump() + files;
    const std::string message = http_message(body, header.dump().size());
    const std::size_t head = message.size() - body.size();
    http::request_parser<HttpBody> parser;
    feed(parser, std::string_view(message).substr(0, head), head);
    parser.get().body().pool = &pool;
    parser.get().body().max_images = spec.max_batch;
    EXPECT_FALSE(feed(parser, std::string_view(message).substr(head), 5));
    ASSERT_TRUE(parser.is_done());
    EXPECT_FALSE(parser.get().body().split);
    EXPECT_EQ(parser.get().body().text, body);
    const InferenceRequest request = decode_http_infer(spec, parser.get().body(), header.dump().size(), pool);
    EXPECT_EQ(request.images, (std::vector<std::string>{"a file", "another file"}));
}

TEST(HttpBody, NoFreeSlotEndsTheRead) {
    const ModelSpec spec = tiny_spec();
    ImagePool pool(spec.image_floats() * sizeof(float), 1, 0);
    std::size_t header = 0;
    const std::string body = binary_request(std::vector<float>(8, 1.f), {2, 1, 2, 2}, &header);
    const std::string message = http_message(body, header);
    const std::size_t head = message.size() - body.size();
    {
        http::request_parser<HttpBody> parser;
        feed(parser, std::string_view(message).substr(0, head), head);
        parser.get().body().pool = &pool;
        parser.get().body().max_images = spec.max_batch;
        EXPECT_EQ(feed(parser, std::string_view(message).substr(head), 7), kNoFreeSlot);
        EXPECT_EQ(parser.get().body().binary.count(), 1);
    }
    ImageSlots again(pool);
    EXPECT_TRUE(again.add());  // the cut request's slot came back
}

TEST(HttpCodec, RefusesRequestsTheModelCannotRun) {
    const ModelSpec spec = tiny_spec();
    const std::pair<const char*, const char*> inputs_and_words[] = {
        {R"({"name": "pixels", "datatype": "FP32", "shape": [1,1,2,2], "data": [1,2,3,4]})", "unknown input 'pixels'"},
        {R"({"name": "pixel_values", "datatype": "FP16", "shape": [1,1,2,2], "data": [1,2,3,4]})", "FP32"},
        {R"({"name": "pixel_values", "datatype": "FP32", "shape": [1,2,2], "data": [1,2,3,4]})", "shape"},
        {R"({"name": "pixel_values", "datatype": "FP32", "shape": [5,1,2,2], "data": []})", "--max-batch 4"},
        {R"({"name": "pixel_values", "datatype": "FP32", "shape": [1,1,2,2], "data": [1,2,3]})", "3 values"},
        {R"({"name": "image", "datatype": "BYTES", "shape": [2], "data": ["a"]})", "1 strings"},
        {R"({"name": "image", "datatype": "BYTES", "shape": [1,1], "data": ["a"]})", "shape"},
    };
    for (const auto& [input, words] : inputs_and_words) {
        const std::string body = std::string(R"({"inputs": [)") + input + "]}";
        EXPECT_NE(refusal([&] { decode_http_infer(spec, body, std::nullopt, tiny_pool()); }).find(words),
                  std::string::npos)
            << input;
    }
    EXPECT_NE(
        refusal([&] { decode_http_infer(spec, R"({"inputs": []})", std::nullopt, tiny_pool()); }).find("exactly one"),
        std::string::npos);
    EXPECT_NE(refusal([&] {
                  decode_http_infer(spec,
                                    R"({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
                                        "outputs": [{"name": "logits", "parameters": {"classification": 0}}]})",
                                    std::nullopt, tiny_pool());
              }).find("at least 1"),
              std::string::npos);
}

TEST(HttpCodec, OutputsAsRequested) {
    const ModelSpec spec = tiny_spec();
    const InferenceRequest images = decode_http_infer(spec,
                                                      R"({"parameters": {"binary_data_output": true},
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}],
            "outputs": [{"name": "logits", "parameters": {"classification": 9}}]})",
                                                      std::nullopt, tiny_pool());
    EXPECT_EQ(images.images, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(images.output.binary);           // from the request's binary_data_output
    EXPECT_EQ(images.output.classification, 3);  // clamped to the classes

    // Classification: softmax probabilities, most probable first, as "prob:index:label".
    const std::vector<float> logits = {0.f, 2.f, 1.f, 5.f, 0.f, 0.f};
    InferenceRequest json_out;
    json_out.batch = images.batch;
    json_out.output = images.output;
    json_out.output.binary = false;
    const HttpInferResponse encoded = encode_http_infer(spec, json_out, logits);
    EXPECT_FALSE(encoded.header_length);
    const json response = json::parse(encoded.body);
    EXPECT_EQ(response["outputs"][0]["datatype"], "BYTES");
    EXPECT_EQ(response["outputs"][0]["shape"], json({2, 3}));
    const std::vector<Prediction> top = top_k(logits.data(), 3, 3, spec.labels);
    const std::string first = response["outputs"][0]["data"][0];
    EXPECT_EQ(first.substr(first.find(':')), ":1:one");
    EXPECT_EQ(std::stof(first.substr(0, first.find(':'))), top[0].prob);

    const HttpInferResponse binary = encode_http_infer(spec, images, logits);
    ASSERT_TRUE(binary.header_length);
    const json header = json::parse(binary.body.substr(0, *binary.header_length));
    const std::size_t size = header["outputs"][0]["parameters"]["binary_data_size"];
    EXPECT_EQ(*binary.header_length + size, binary.body.size());
    const std::vector<std::string> strings =
        strings_from_bytes(std::string_view(binary.body).substr(*binary.header_length), 6);
    EXPECT_EQ(strings[0], first);
}

TEST(HttpCodec, JsonLogitsReadBackAsTheSameFloats) {
    const ModelSpec spec = tiny_spec();
    InferenceRequest request;
    request.batch = 2;
    const std::vector<float> logits = {0.1f,        1e-30f,     FLT_MAX, std::numeric_limits<float>::denorm_min(),
                                       -2.7182817f, 123456.789f};
    const json response = json::parse(encode_http_infer(spec, request, logits).body);
    EXPECT_EQ(response["outputs"][0]["shape"], json({2, 3}));
    for (std::size_t i = 0; i < logits.size(); ++i)
        EXPECT_EQ(static_cast<float>(response["outputs"][0]["data"][i].get<double>()), logits[i]);

    request.output.binary = true;
    const HttpInferResponse binary = encode_http_infer(spec, request, logits);
    std::vector<float> back(logits.size());
    std::memcpy(back.data(), binary.body.data() + *binary.header_length, back.size() * 4);
    EXPECT_EQ(back, logits);
}

TEST(TensorData, OnlyFinitePixelsPass) {
    std::vector<float> pixels(1000, 0.5f);
    pixels[0] = FLT_MAX;
    pixels[1] = -FLT_MAX;
    pixels[2] = std::numeric_limits<float>::denorm_min();
    pixels[3] = -0.f;
    EXPECT_EQ(refusal([&] { require_finite(pixels.data(), pixels.size()); }), "");
    for (const float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()})
        for (const std::size_t at : {std::size_t(0), std::size_t(517), std::size_t(999)}) {
            std::vector<float> with_bad = pixels;
            with_bad[at] = bad;
            const std::string message = refusal([&] { require_finite(with_bad.data(), with_bad.size()); });
            EXPECT_NE(message.find("value " + std::to_string(at) + " is"), std::string::npos) << bad << " at " << at;
        }
}

TEST(TensorData, BytesElementsAreLengthPrefixed) {
    std::string raw;
    append_string_bytes({"ab", "", "xyz"}, raw);
    EXPECT_EQ(raw.size(), 4u * 3 + 5);
    EXPECT_EQ(strings_from_bytes(raw, 3), (std::vector<std::string>{"ab", "", "xyz"}));
    EXPECT_NE(refusal([&] { strings_from_bytes(raw, 2); }).find("more than"), std::string::npos);
    EXPECT_NE(refusal([&] { strings_from_bytes(raw, 4); }).find("3 elements"), std::string::npos);
    EXPECT_NE(refusal([&] { strings_from_bytes(raw.substr(0, 2), 1); }).find("inside the length"), std::string::npos);
    EXPECT_NE(refusal([&] { strings_from_bytes(raw.substr(0, 5), 3); }).find("claims 2 bytes"), std::string::npos);
}

TEST(ApiKey, AcceptsOnlyTheBearerOfTheKey) {
    const ApiKey key("k3y");
    EXPECT_TRUE(key.accepts("Bearer k3y"));
    EXPECT_FALSE(key.accepts("Bearer k3"));
    EXPECT_FALSE(key.accepts("Bearer k3yy"));
    EXPECT_FALSE(key.accepts("Bearer k3Y"));
    EXPECT_FALSE(key.accepts("bearer k3y"));
    EXPECT_FALSE(key.accepts("k3y"));
    EXPECT_FALSE(key.accepts(""));
    EXPECT_FALSE(key.accepts("Bearer k3yBearer k3y"));  // the key cycled, same bytes
}

TEST(Metrics, HistogramsAreCumulative) {
    Metrics metrics(8);
    metrics.observe_batch(1, 0.0015);
    metrics.observe_batch(3, 0.003);
    metrics.observe_batch(8, 0.5);
    metrics.request(Protocol::grpc, Endpoint::infer, false);
    const std::string text = metrics.render();
    EXPECT_NE(text.find("onevit_batch_size_bucket{le=\"1\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("onevit_batch_size_bucket{le=\"2\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_batch_size_bucket{le=\"4\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_batch_size_bucket{le=\"8\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_batch_size_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_batch_size_sum 12\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_images_total 12\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_compute_duration_seconds_bucket{le=\"0.001\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_compute_duration_seconds_bucket{le=\"0.002\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_compute_duration_seconds_bucket{le=\"0.005\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_compute_duration_seconds_bucket{le=\"0.5\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_compute_duration_seconds_sum 0.5045\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_decode_duration_seconds_count 0\n"), std::string::npos);
    EXPECT_NE(text.find("onevit_request_failures_total{protocol=\"grpc\",endpoint=\"infer\"} 1\n"), std::string::npos);
}

// The batcher on the bundled model: whatever batches it forms, each job gets the
// rows Model::run gives its own input (the engine's rows do not depend on the batch).
using BatcherTest = DigitsModelTest<2>;

TEST_F(BatcherTest, EachJobGetsItsOwnRows) {
    Metrics metrics(4);
    // Taken by four senders at once: a job's images are often in slots apart (the batcher gathers them).
    ImagePool pool(32 * 32 * sizeof(float), 160, 0);
    Batcher batcher(*model_, 4, std::chrono::microseconds(200), 1000, metrics);
    constexpr int kJobs = 60;
    std::vector<std::vector<float>> inputs;
    std::vector<std::promise<std::vector<float>>> results(kJobs);
    for (int i = 0; i < kJobs; ++i) inputs.push_back(random_images(1 + i % 4, i));
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
        senders.emplace_back([&, t] {
            for (int i = t; i < kJobs; i += 4) {
                ASSERT_TRUE(batcher.reserve(1 + i % 4));
                auto job = std::make_unique<BatchJob>();
                job->images = 1 + i % 4;
                job->pixels = pool.copy_of(inputs[i].data(), inputs[i].size() * sizeof(float));
                job->done = [&results, i](std::vector<float> outputs, const std::string& error) {
                    EXPECT_EQ(error, "");
                    results[i].set_value(std::move(outputs));
                };
                batcher.submit(std::move(job), t % 2 == 0);  // half of them may run it themselves
            }
        });
    for (std::thread& t : senders) t.join();
    for (int i = 0; i < kJobs; ++i)
        EXPECT_EQ(results[i].get_future().get(), model_->run(inputs[i].data(), 1 + i % 4)) << "job " << i;
}

// With a delay no test run reaches, a request waits for a full batch (4 images)
// only behind a running batch: with every stream idle it starts at once, and a
// partial batch starts as soon as the batch ahead of it ends.
TEST_F(BatcherTest, WaitsForAFullBatchOnlyWhileAnotherRuns) {
    Metrics metrics(4);
    ImagePool pool(32 * 32 * sizeof(float), 16, 0);
    Batcher batcher(*model_, 4, std::chrono::seconds(600), 8, metrics);
    std::atomic<int> done{0};
    // on_done, if any, runs on the batcher's worker before the job counts as done.
    const auto submit = [&](int images, std::function<void()> on_done = nullptr) {
        ASSERT_TRUE(batcher.reserve(images));
        auto job = std::make_unique<BatchJob>();
        job->images = images;
        const std::vector<float> pixels = random_images(images, 7);
        job->pixels = pool.copy_of(pixels.data(), pixels.size() * sizeof(float));
        job->done = [&done, on_done](std::vector<float>, const std::string&) {
            if (on_done) on_done();
            ++done;
        };
        batcher.submit(std::move(job));
    };
    const auto wait_for = [&](int jobs) {
        for (int wait = 0; wait < 6000 && done.load() < jobs; ++wait)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return done.load();
    };
    const auto batches = [&] {
        const std::string text = metrics.render();
        const std::size_t at = text.find("onevit_batch_size_count ");
        return std::stoi(text.substr(at + std::strlen("onevit_batch_size_count ")));
    };
    // Idle: a lone request starts at once. Its callback holds its worker, so its batch runs until released.
    std::promise<void> started, release;
    std::shared_future<void> released = release.get_future().share();
    submit(1, [&] {
        started.set_value();
        released.wait();
    });
    ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready)
        << "a request to an idle batcher waited for others";
    submit(1);
    submit(2);
    EXPECT_FALSE(batcher.reserve(6)) << "3 queued + 6 is over the queue's 8";
    EXPECT_TRUE(batcher.reserve(5));
    batcher.release(5);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(done.load(), 0) << "3 images behind a running batch wait for a 4th";
    submit(1);  // 4 images: a full batch, on the other stream
    EXPECT_EQ(wait_for(3), 3);
    EXPECT_EQ(batches(), 2) << "the lone request, then one batch of all three";
    submit(2);  // behind the held batch again: waits
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(done.load(), 3);
    release.set_value();  // the held batch ends: the 2 images start without waiting out the delay
    EXPECT_EQ(wait_for(5), 5);
    EXPECT_EQ(batches(), 3);
    submit(3);
    EXPECT_EQ(wait_for(6), 6) << "idle again: at once";
    submit(1);
    submit(2);
    batcher.stop();  // runs what is queued without waiting out the delay
    EXPECT_EQ(done.load(), 8);
    EXPECT_FALSE(batcher.reserve(1));
}

// The idle trim (malloc_trim and the image pool's give-back, here counted) comes only
// after a second with nothing to run: never between the requests of a steady client,
// once after its last, and not again until another has run.
TEST_F(BatcherTest, TrimsOnlyAfterASecondIdle) {
    Metrics metrics(4);
    ImagePool pool(32 * 32 * sizeof(float), 16, 0);
    std::atomic<int> trims{0};
    Batcher batcher(*model_, 4, std::chrono::microseconds(200), 8, metrics, [&] { ++trims; });
    const std::vector<float> pixels = random_images(1, 31);
    int answered = 0;
    // One request at a time, each sent when the one before is answered (run here or by a worker).
    const auto request = [&](bool may_run_here) {
        ASSERT_TRUE(batcher.reserve(1));
        auto job = std::make_unique<BatchJob>();
        job->images = 1;
        job->pixels = pool.copy_of(pixels.data(), pixels.size() * sizeof(float));
        std::promise<void> done;
        job->done = [&done](std::vector<float>, const std::string& error) {
            EXPECT_EQ(error, "");
            done.set_value();
        };
        auto answer = done.get_future();
        batcher.submit(std::move(job), may_run_here);
        answer.wait();
        ++answered;
    };
    const auto wait_for_trims = [&](int count) {
        for (int wait = 0; wait < 1000 && trims.load() < count; ++wait)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return trims.load();
    };
    const auto steady_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    for (int i = 0; std::chrono::steady_clock::now() < steady_until; ++i) request(i % 2 == 0);
    EXPECT_EQ(trims.load(), 0) << "trimmed between the " << answered << " requests of a steady client";
    EXPECT_EQ(wait_for_trims(1), 1) << "no trim after the last request";
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(trims.load(), 1) << "trimmed again with nothing run since";
    request(true);
    EXPECT_EQ(wait_for_trims(2), 2) << "no trim after a request that ran on the submitting thread";
    batcher.stop();
}

// One stream of two threads, as the c=1 server has: a submitter that may block
// runs a lone request itself, in the stream's arena; others queue behind its run.
using LoneRequestTest = DigitsModelTest<1>;

TEST_F(LoneRequestTest, RunsOnTheSubmittingThreadWhenIdle) {
    Metrics metrics(4);
    ImagePool pool(32 * 32 * sizeof(float), 16, 0);
    Batcher batcher(*model_, 4, std::chrono::seconds(600), 8, metrics);
    struct Answer {
        std::vector<float> rows;
        std::thread::id thread;
    };
    // hold, if any, runs in the job's callback (so its run lasts until released).
    const auto submit = [&](const std::vector<float>& pixels, std::promise<Answer>& answer, bool may_run_here,
                            std::function<void()> hold = nullptr) {
        const int images = static_cast<int>(pixels.size() / (32 * 32));
        ASSERT_TRUE(batcher.reserve(images));
        auto job = std::make_unique<BatchJob>();
        job->images = images;
        job->pixels = pool.copy_of(pixels.data(), pixels.size() * sizeof(float));
        job->done = [&answer, hold](std::vector<float> rows, const std::string& error) {
            EXPECT_EQ(error, "");
            if (hold) hold();
            answer.set_value({std::move(rows), std::this_thread::get_id()});
        };
        batcher.submit(std::move(job), may_run_here);
    };
    const std::vector<float> one = random_images(1, 11), two = random_images(2, 12);

    std::promise<Answer> first;
    submit(one, first, true);
    auto answered = first.get_future();
    ASSERT_EQ(answered.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "not answered within submit";
    const Answer lone = answered.get();
    EXPECT_EQ(lone.thread, std::this_thread::get_id());
    EXPECT_EQ(lone.rows, model_->run(one.data(), 1));

    // A run held on a thread of its own: requests meanwhile queue (the delay is never reached), whatever
    // they may do, and run on the batcher's worker as soon as it ends.
    std::promise<void> running, release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<Answer> held, behind, also_behind;
    std::thread holder([&] {
        submit(two, held, true, [&] {
            running.set_value();
            released.wait();
        });
    });
    running.get_future().wait();
    submit(one, behind, true);  // with the next, 3 images: short of a full batch
    submit(two, also_behind, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto behind_answer = behind.get_future();
    EXPECT_EQ(behind_answer.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
        << "ran beside the held run, or on the submitting thread";
    release.set_value();
    holder.join();
    const Answer after = behind_answer.get();
    EXPECT_NE(after.thread, std::this_thread::get_id());
    EXPECT_EQ(after.rows, model_->run(one.data(), 1));
    EXPECT_EQ(also_behind.get_future().get().rows, model_->run(two.data(), 2));
    EXPECT_EQ(held.get_future().get().rows, model_->run(two.data(), 2));
    batcher.stop();
}

// The stream runs one job at a time, whether its own thread or a caller runs it:
// runs from both at once each get their own input's rows.
TEST_F(LoneRequestTest, CallersAndTheStreamTakeTurns) {
    const std::vector<float> a = random_images(1, 21), b = random_images(2, 22);
    const std::vector<float> expect_a = model_->run(a.data(), 1), expect_b = model_->run(b.data(), 2);
    // run() returns once its rows are ready, a moment before its stream counts as idle again.
    std::optional<std::vector<float>> idle;
    for (int wait = 0; wait < 1000 && !idle; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        idle = model_->run_here_if_idle(a.data(), 1);
    }
    ASSERT_TRUE(idle) << "an idle stream refused its caller";
    EXPECT_EQ(*idle, expect_a);
    std::atomic<int> here{0};
    // Every other run on the calling thread if the stream is idle, else queued on the stream.
    const auto runs = [&](const std::vector<float>& input, int images, const std::vector<float>& expected) {
        for (int i = 0; i < 60; ++i) {
            std::optional<std::vector<float>> rows;
            if (i % 2 == 0 && (rows = model_->run_here_if_idle(input.data(), images))) ++here;
            if (!rows) rows = model_->run(input.data(), images);
            EXPECT_EQ(*rows, expected) << "run " << i;
        }
    };
    std::thread other([&] { runs(a, 1, expect_a); });
    runs(b, 2, expect_b);
    other.join();
    std::printf("%d of 60 tries on the calling threads\n", here.load());
}

}  // namespace
}  // namespace onevit::serve
