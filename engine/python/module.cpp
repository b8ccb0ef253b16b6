// onevit._core: the compiled half of the onevit Python module. It binds the C++
// API (Model, decode_image, preprocess, Error) and converts between numpy and the
// engine; onevit/__init__.py builds the public API on it (Model.submit, and
// classify()'s paths and PIL images). Every engine call releases the GIL, so
// Python threads run models (and decode images) in parallel.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <tbb/info.h>

#include "arrays.hpp"
#include "image/image_listing.hpp"
#include "onevit/onevit.hpp"

namespace onevit::python {

namespace {

// A bad option value is the caller's mistake: ValueError, as Python does for bad values.
Hint parse_hint(const std::string& name) {
    if (name == "latency") return Hint::latency;
    if (name == "throughput") return Hint::throughput;
    throw py::value_error("unknown hint '" + name + "' (expected latency or throughput)");
}

Precision parse_precision_value(const std::string& name) {
    try {
        return parse_precision(name);
    } catch (const Error& e) {
        throw py::value_error(e.what());
    }
}

// precision None: the precision the file was written for. Threads beyond the
// cores oneTBB gives this process are capped to them, as the CLI does (oneTBB
// would refuse the extra workers anyway, with a warning on stderr).
Model load(const std::string& path, int threads, int streams, const std::string& hint,
           const std::optional<std::string>& precision) {
    Options options{std::min(threads, tbb::info::default_concurrency()), streams, parse_hint(hint)};
    if (precision) options.precision = parse_precision_value(*precision);
    py::gil_scoped_release unlocked;
    return Model::load(path, options);
}

py::dict architecture_dict(const Architecture& a) {
    py::dict d;
    d["family"] = a.family;
    d["image_height"] = a.image_height;
    d["image_width"] = a.image_width;
    d["channels"] = a.channels;
    d["patch_size"] = a.patch_size;
    d["dim"] = a.dim;
    d["embed_dim"] = a.embed_dim();
    d["depth"] = a.depth;
    d["heads"] = a.heads;
    d["head_dim"] = a.head_dim;
    d["mlp_dim"] = a.mlp_dim;
    d["num_classes"] = a.num_classes;
    d["prefix_tokens"] = a.prefix_tokens;
    d["patch_tokens"] = a.patch_tokens();
    d["norm_eps"] = a.norm_eps;
    d["gelu"] = to_string(a.gelu);
    d["attn_scale"] = a.attn_scale;
    d["qkv_bias"] = a.qkv_bias;
    d["attn_proj"] = a.attn_proj;
    d["final_norm"] = a.final_norm;
    d["pool"] = to_string(a.pool);
    d["head_norm"] = a.head_norm;
    d["head"] = to_string(a.head);
    d["head_hidden"] = a.head_hidden;
    d["patch_norm"] = a.patch_norm;
    d["class_token"] = a.class_token;
    d["norm_pre"] = a.norm_pre;
    d["pool_proj"] = a.pool_proj;
    d["pool_proj_act"] = to_string(a.pool_proj_act);
    d["features"] = a.features;
    if (a.rope != Rope::none) d["rope_layout"] = to_string(a.rope);
    d["rope_per_block"] = a.rope_per_block;
    d["pool_heads"] = a.attn_pool_heads();
    d["pool_mlp_dim"] = a.attn_pool_mlp_dim();
    d["pool_prefix"] = a.pool_prefix;
    return d;
}

py::dict info_dict(const Model& model) {
    const ModelInfo& info = model.info();
    py::dict preprocessing;
    preprocessing["resize"] = to_string(info.preprocess.resize);
    preprocessing["resize_size"] = info.preprocess.resize_size;
    preprocessing["interpolation"] = to_string(info.preprocess.interpolation);
    preprocessing["mean"] = info.preprocess.mean;
    preprocessing["std"] = info.preprocess.std;
    py::dict d;
    d["architecture"] = architecture_dict(info.arch);
    d["preprocessing"] = preprocessing;
    d["labels"] = info.labels;
    d["parameters"] = info.parameter_count;
    d["stored_precision"] = to_string(info.stored_precision);
    return d;
}

py::array_t<float> run(const Model& model, const py::handle& x) {
    const Architecture& arch = model.info().arch;
    const InputBatch input = input_batch(x, arch, "x");
    std::vector<float> logits;
    {
        py::gil_scoped_release unlocked;
        logits = model.run(input.data, input.batch);
    }
    return to_numpy(std::move(logits), {input.batch, arch.outputs()});
}

// The pooled embedding of each image (Features::embedding): [batch, dim].
py::array_t<float> embed(const Model& model, const py::handle& x) {
    const Architecture& arch = model.info().arch;
    const InputBatch input = input_batch(x, arch, "x");
    Features out;
    {
        py::gil_scoped_release unlocked;
        model.run(input.data, input.batch, &out);
    }
    return to_numpy(std::move(out.embedding), {input.batch, arch.embed_dim()});
}

std::pair<py::array_t<float>, py::array_t<float>> features(const Model& model, const py::handle& x) {
    const Architecture& arch = model.info().arch;
    const InputBatch input = input_batch(x, arch, "x");
    Features out;
    {
        py::gil_scoped_release unlocked;
        model.run(input.data, input.batch, &out);
    }
    return {to_numpy(std::move(out.class_token), {input.batch, arch.class_token ? arch.dim : 0}),
            to_numpy(std::move(out.patch_tokens), {input.batch, arch.patch_tokens(), arch.dim})};
}

// A sequence of uint8 pixel arrays as the model's input images (image_from_array).
std::vector<Image> images_from_arrays(const py::sequence& arrays, const Architecture& arch) {
    std::vector<Image> images;
    for (std::size_t i = 0; i < arrays.size(); ++i)
        images.push_back(image_from_array(arrays[i], arch.channels, ("images[" + std::to_string(i) + "]").c_str()));
    return images;
}

// Per image, its top classes as (index, label, prob) tuples, or the one-line
// message of why it could not be preprocessed: the others still run, as one batch.
py::list classify_arrays(const Model& model, const py::sequence& arrays, int top) {
    const ModelInfo& info = model.info();
    if (info.arch.num_classes == 0)
        throw Error("the model has no classifier (num_classes 0): it gives image embeddings (Model.embed_images)");
    const std::vector<Image> images = images_from_arrays(arrays, info.arch);
    std::vector<std::string> errors(images.size());
    std::vector<std::vector<Prediction>> predictions(images.size());
    {
        py::gil_scoped_release unlocked;
        std::vector<float> input;
        std::vector<std::size_t> ran;  // the images in the batch
        for (std::size_t i = 0; i < images.size(); ++i) {
            try {
                const std::vector<float> chw = preprocess(images[i], info.arch, info.preprocess);
                input.insert(input.end(), chw.begin(), chw.end());
                ran.push_back(i);
            } catch (const Error& e) {
                errors[i] = e.what();
            }
        }
        if (!ran.empty()) {
            const int classes = info.arch.num_classes;
            const std::vector<float> logits = model.run(input.data(), static_cast<int>(ran.size()));
            for (std::size_t b = 0; b < ran.size(); ++b)
                predictions[ran[b]] = top_k(logits.data() + b * classes, classes, top, info.labels);
        }
    }
    py::list out;
    for (std::size_t i = 0; i < images.size(); ++i) {
        if (!errors[i].empty()) {
            out.append(py::str(errors[i]));
            continue;
        }
        py::list image;
        for (const Prediction& p : predictions[i]) image.append(py::make_tuple(p.index, p.label, p.prob));
        out.append(image);
    }
    return out;
}

// The pooled embeddings of images: [N, dim].
py::array_t<float> embed_arrays(const Model& model, const py::sequence& arrays, bool normalize) {
    const std::vector<Image> images = images_from_arrays(arrays, model.info().arch);
    std::vector<float> rows;
    {
        py::gil_scoped_release unlocked;
        rows = model.embed(images, normalize);
    }
    return to_numpy(std::move(rows), {static_cast<py::ssize_t>(images.size()), model.info().arch.embed_dim()});
}

// Every block's attention probabilities: [N, depth, heads, tokens, tokens].
py::array_t<float> attention(const Model& model, const py::handle& x) {
    const Architecture& arch = model.info().arch;
    const InputBatch input = input_batch(x, arch, "x");
    AttentionMaps maps;
    {
        py::gil_scoped_release unlocked;
        model.run(input.data, input.batch, nullptr, &maps);
    }
    return to_numpy(std::move(maps.probs), {input.batch, maps.depth, maps.heads, maps.tokens, maps.tokens});
}

// Attention rollout of each image (onevit/rollout.hpp): float32 [grid_h, grid_w] maps summing to 1.
// One image per run, as `onevit explain` runs them: the same maps, and memory for one image's attention.
std::vector<py::array_t<float>> explain_arrays(const Model& model, const py::sequence& arrays) {
    const ModelInfo& info = model.info();
    const std::vector<Image> images = images_from_arrays(arrays, info.arch);
    std::vector<std::vector<float>> maps;
    {
        py::gil_scoped_release unlocked;
        for (const Image& image : images) {
            const std::vector<float> input = preprocess(image, info.arch, info.preprocess);
            AttentionMaps attention;
            model.run(input.data(), 1, nullptr, &attention);
            maps.push_back(attention_rollout(attention, 0, info.arch));
        }
    }
    std::vector<py::array_t<float>> out;
    for (std::vector<float>& map : maps)
        out.push_back(to_numpy(std::move(map), {info.arch.grid_height(), info.arch.grid_width()}));
    return out;
}

py::array_t<std::uint8_t> decode(const py::handle& source, int channels) {
    Image image;
    if (py::isinstance<py::bytes>(source) || py::isinstance<py::bytearray>(source)) {
        const py::buffer_info bytes = py::reinterpret_borrow<py::buffer>(source).request();
        py::gil_scoped_release unlocked;
        image = decode_image_bytes(static_cast<const std::uint8_t*>(bytes.ptr),
                                   static_cast<std::size_t>(bytes.size * bytes.itemsize), channels);
    } else {
        const std::string path = py::module_::import("os").attr("fsdecode")(source).cast<std::string>();
        py::gil_scoped_release unlocked;
        image = decode_image(path, channels);
    }
    return to_numpy(std::move(image.pixels), {image.height, image.width, image.channels});
}

py::array_t<float> preprocess_array(const py::handle& array, const Model& model) {
    const ModelInfo& info = model.info();
    const Image image = image_from_array(array, info.arch.channels, "image");
    std::vector<float> chw;
    {
        py::gil_scoped_release unlocked;
        chw = preprocess(image, info.arch, info.preprocess);
    }
    return to_numpy(std::move(chw), {info.arch.channels, info.arch.image_height, info.arch.image_width});
}

// The CLI's rule for image arguments (list_image_inputs), for onevit.dask. Paths
// are bytes both ways (os.fsencode / os.fsdecode): a file name need not be UTF-8.
py::tuple list_image_paths(const std::vector<std::string>& inputs) {
    ImageListing listing;
    try {
        listing = list_image_inputs(inputs);
    } catch (const Error& e) {
        const py::object message = py::module_::import("os").attr("fsdecode")(py::bytes(e.what()));
        PyErr_SetObject(py::module_::import("onevit._core").attr("Error").ptr(), message.ptr());
        throw py::error_already_set();
    }
    py::list images;
    for (const std::string& image : listing.images) images.append(py::bytes(image));
    return py::make_tuple(images, listing.skipped);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "The compiled part of onevit; use the onevit package, which re-exports it.";
    py::register_exception<Error>(m, "Error", PyExc_RuntimeError).doc() =
        "Any failure the engine reports (a bad model file, an unreadable image, a bad option),\n"
        "with its one-line message.";

    py::class_<Model>(m, "Model", "A loaded ViT (the engine half of onevit.Model).")
        .def(py::init(&load), py::arg("path"), py::arg("threads") = 0, py::arg("streams") = 0,
             py::arg("hint") = "latency", py::arg("precision") = py::none())
        .def_property_readonly("info", &info_dict,
                               "The model file's description as plain Python values: a dict with\n"
                               "'architecture' (dict), 'preprocessing' (dict), 'labels' (list of str,\n"
                               "empty when the file has none) and 'parameters' (int).")
        .def_property_readonly("threads", &Model::threads, "Threads the model runs on, all streams together.")
        .def_property_readonly("streams", &Model::streams, "Streams: requests the model runs at once.")
        .def_property_readonly(
            "precision", [](const Model& model) { return to_string(model.precision()); },
            "The precision the model computes in: 'f32', 'bf16' or 'int8'.")
        .def("run", &run, py::arg("x"),
             "Logits of a batch: x is a C-contiguous float32 numpy array [N, C, H, W] of\n"
             "preprocessed images (onevit.preprocess), read in place; returns float32 [N, classes]\n"
             "(a model without a classifier: its embeddings, [N, dim]).\n"
             "Releases the GIL: threads may call one model at once.")
        .def("embed", &embed, py::arg("x"),
             "The pooled image embedding (timm's forward_head(pre_logits=True)), for x as in run():\n"
             "float32 [N, dim].")
        .def("features", &features, py::arg("x"),
             "The transformer's output tokens after the final LayerNorm, for x as in run():\n"
             "(class_token float32 [N, dim] ([N, 0] without a class token), patch_tokens float32\n"
             "[N, patches, dim]).")
        .def(
            "verify",
            [](const Model& model) {
                py::gil_scoped_release unlocked;
                model.verify();
            },
            "Checks the checksum of all weights (loading checks only the header's); raises onevit.Error.")
        .def("attention", &attention, py::arg("x"),
             "Every block's attention probabilities, softmax(scale q k^T) of each head, for x as in run():\n"
             "float32 [N, depth, heads, tokens, tokens] (prefix tokens first, then the patches row by row).")
        .def("_classify_arrays", &classify_arrays, py::arg("images"), py::arg("top"))
        .def("_embed_arrays", &embed_arrays, py::arg("images"), py::arg("normalize"))
        .def("_explain_arrays", &explain_arrays, py::arg("images"));

    m.attr("__version__") = ONEVIT_VERSION;
    m.def("decode_image", &decode, py::arg("source"), py::arg("channels") = 3,
          "Decodes a JPEG, PNG, WebP, BMP or TIFF to uint8 pixels [H, W, channels], as PIL's\n"
          "Image.open(source).convert('RGB' or 'L') gives them:\n"
          "source is a path (str or os.PathLike) or the file's bytes (bytes, bytearray); channels is 3 (RGB) or 1 "
          "(grey).\n"
          "Raises onevit.Error naming the file.");
    m.def("_list_image_inputs", &list_image_paths, py::arg("inputs"));
    m.def("_skipped_files_note", &skipped_files_note, py::arg("skipped"));
    m.def("_preprocess_array", &preprocess_array, py::arg("image"), py::arg("model"));
}

}  // namespace onevit::python
