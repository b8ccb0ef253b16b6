"""convert.py on the library-written fixtures (tests/fixtures/): what each source's description
takes, and near-misses (a known family with a tensor missing or mis-shaped, a name or weight set
that is not the checkpoint's) refused in one line naming the tensor and the shape expected, with
no file written. Parity of the fixtures themselves: tests/fixtures_test.py.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'
"""

import json
import os
import shutil
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_convert as tc  # noqa: E402  (ConvertTestCase, safetensors writer, the converter on sys.path)
from onevit_convert import features  # noqa: E402
from onevit_convert.checkpoint import load_checkpoint  # noqa: E402

FIXTURES = os.path.join(tc.ROOT, "tests", "fixtures")


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


class Sources(tc.ConvertTestCase):
    def copy_folder(self, *parts):
        """A writable copy of a fixture folder."""
        target = self.path(parts[-1])
        shutil.copytree(fixture(*parts), target)
        return target

    def torch_state(self, path):
        import torch
        return torch.load(path, map_location="cpu", weights_only=True)

    def save_torch(self, state, name):
        import torch
        torch.save(state, self.path(name))
        return self.path(name)

    # ------------------------------------------------------------------ torchvision

    def test_torchvision_near_misses(self):
        state = self.torch_state(fixture("torchvision", "plain", "model.pth"))
        missing = dict(state)
        del missing["encoder.layers.encoder_layer_1.ln_2.bias"]
        self.convert_fails(self.save_torch(missing, "missing.pth"), "--heads", "2",
                           contains=("torchvision", "missing 1 tensor", "encoder.layers.encoder_layer_1.ln_2.bias"))
        shaped = dict(state)
        shaped["encoder.layers.encoder_layer_0.mlp.3.weight"] = shaped["encoder.layers.encoder_layer_0.mlp.3.weight"][:, :60]
        self.convert_fails(self.save_torch(shaped, "shaped.pth"), "--heads", "2",
                           contains=("encoder.layers.encoder_layer_0.mlp.3.weight", "[32, 60]", "reads 60",
                                     "mlp.0.weight", "writes 64"))

    def test_torchvision_names_and_weight_sets(self):
        pth = fixture("torchvision", "plain", "model.pth")
        # Width 32 is no torchvision architecture: the heads must be given, or the name is refused.
        self.convert_fails(pth, contains=("torchvision", "dim=32", "--heads"))
        self.convert_fails(pth, "--arch", "vit_b_16", contains=("vit_b_16", "width 768", "32", "--heads"))
        self.convert_fails(pth, "--arch", "vit_b_17", contains=("vit_b_17", "vit_b_16, vit_b_32"))
        self.convert_fails(pth, "--weights", "IMAGENET1K_V7", "--heads", "2", contains=("IMAGENET1K_V7",))
        self.convert_fails(pth, "--arch", "vit_b_32", "--weights", "IMAGENET1K_SWAG_E2E_V1", "--heads", "2",
                           contains=("IMAGENET1K_SWAG_E2E_V1", "vit_b_32", "IMAGENET1K_V1"))
        # A weight set for another input size than the position embedding's.
        self.convert_fails(pth, "--arch", "vit_b_16", "--weights", "IMAGENET1K_SWAG_E2E_V1", "--heads", "2",
                           contains=("384x384", "32x32"))
        self.convert_fails(pth, "--weights", "IMAGENET1K_V1", "--heads", "2",
                           contains=("IMAGENET1K_V1", "differs between", "--arch"))
        self.convert_fails(pth, "--heads", "2", "--gelu", "tanh", contains=("torchvision", "exact GELU"))
        # A timm name for a torchvision checkpoint.
        self.convert_fails(pth, "--arch", "vit_tiny_patch16_224", contains=("timm", "torchvision"))
        m = self.convert(pth, "--heads", "2").metadata
        self.assertEqual((m["arch.family"], m["arch.norm_eps"], m["preprocess.resize"], m["preprocess.resize_size"],
                          m["preprocess.interpolation"]),
                         ("torchvision", tc.f32(1e-6), "shorter_then_crop", 32, "bilinear"))

    # ------------------------------------------------------------------ transformers

    def test_transformers_near_misses(self):
        folder = self.copy_folder("transformers", "dinov2")
        weights = os.path.join(folder, "model.safetensors")
        state = load_checkpoint(weights)
        del state["encoder.layer.0.layer_scale2.lambda1"]
        tc.write_safetensors(weights, state)
        self.convert_fails(folder, contains=("hf", "missing 1 tensor", "encoder.layer.0.layer_scale2.lambda1"))
        state = load_checkpoint(fixture("transformers", "dinov2", "model.safetensors"))
        state["encoder.layer.1.mlp.fc1.weight"] = state["encoder.layer.1.mlp.fc1.weight"][:48]
        tc.write_safetensors(weights, state)
        self.convert_fails(folder, contains=("encoder.layer.1.mlp.fc1.weight", "[48, 32]", "expected [64, 32]"))

    def test_transformers_config_contradictions(self):
        folder = self.copy_folder("transformers", "clip_vision")
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        config["num_hidden_layers"] = 3
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        self.convert_fails(folder, contains=("depth=3", "depth=2"))
        config["num_hidden_layers"], config["model_type"] = 2, "beit"
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        self.convert_fails(folder, contains=("model_type 'beit'", "dinov2", "siglip"))

    def test_transformers_processor_for_another_size(self):
        folder = self.copy_folder("transformers", "vit_model")
        with open(os.path.join(folder, "preprocessor_config.json")) as f:
            processor = json.load(f)
        processor["size"] = {"height": 48, "width": 48}
        with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
            json.dump(processor, f)
        # ViT does not interpolate its position embedding unless asked: refused, not resampled.
        self.convert_fails(folder, contains=("48x48", "32x32", "interpolate"))

    def test_transformers_embeddings_are_described(self):
        expected = {"vit_model_pooler": "pooler_output", "dinov2": "Dinov2Model pooler_output",
                    "clip_full": "get_image_features", "siglip_vision": "get_image_features",
                    "dinov2_classifier": "concat(class token, mean of the patch tokens)"}
        for case, words in expected.items():
            with self.subTest(case=case):
                m = self.convert(fixture("transformers", case), output=f"{case}.ovit").metadata
                self.assertIn(words, m["embedding"])

    def test_transformers_features_decided_from_the_config(self):
        """DINOv3 (RoPE, no position table; a gated MLP) and DINOv2's SwiGLU are version 2 features:
        refused by name where the engine does not run them, else written as the contract says."""
        cases = {"dinov3": ["no_pos_embed", "rope"], "dinov3_swiglu": ["no_pos_embed", "rope", "swiglu"],
                 "dinov2_swiglu": ["swiglu"]}
        for case, names in cases.items():
            with self.subTest(case=case):
                with mock.patch.object(features, "ENGINE_SUPPORTED", frozenset()):
                    self.convert_fails(fixture("transformers", case), contains=("config.json", *names, "cannot run"))
                with mock.patch.object(features, "ENGINE_SUPPORTED", frozenset(features.FEATURES)):
                    m = self.convert(fixture("transformers", case), output=f"{case}.ovit").metadata
                self.assertEqual(m["arch.features"], names)
                self.assertIn("pooler_output (the normed class token)", m["embedding"])

    def test_transformers_dinov3_near_misses(self):
        folder = self.copy_folder("transformers", "dinov3")
        weights, config_path = os.path.join(folder, "model.safetensors"), os.path.join(folder, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        with mock.patch.object(features, "ENGINE_SUPPORTED", frozenset(features.FEATURES)):
            state = load_checkpoint(weights)
            del state["layer.1.attention.k_proj.weight"]
            tc.write_safetensors(weights, state)
            self.convert_fails(folder, contains=("hf", "missing 1 tensor", "layer.1.attention.k_proj.weight"))
            shutil.copy(fixture("transformers", "dinov3", "model.safetensors"), weights)
            # The config's gated MLP is not in the tensors: both named.
            self.write_config(config_path, config, use_gated_mlp=True, hidden_act="silu")
            self.convert_fails(folder, contains=("dinov3_vit", "no_pos_embed, rope, swiglu", "tensors",
                                                 "no_pos_embed, rope"))
            self.write_config(config_path, config, use_gated_mlp=True, hidden_act="gelu")
            self.convert_fails(folder, contains=("use_gated_mlp", "'gelu'", "SiLU"))
            self.write_config(config_path, config, num_register_tokens=3)
            self.convert_fails(folder, contains=("num_register_tokens=3", "2 register tokens"))

    def write_config(self, path, config, **changes):
        with open(path, "w") as f:
            json.dump(dict(config, **changes), f)

    # ------------------------------------------------------------------ OpenCLIP

    def test_openclip_near_misses_and_names(self):
        bin_path = fixture("openclip", "quickgelu", "open_clip_pytorch_model.bin")
        state = self.torch_state(bin_path)
        missing = dict(state)
        del missing["visual.ln_post.bias"]
        self.convert_fails(self.save_torch(missing, "missing.bin"), "--gelu", "quick", "--heads", "2",
                           contains=("openclip", "visual.ln_post.bias"))
        shaped = dict(state)
        shaped["visual.proj"] = shaped["visual.proj"][:31]
        self.convert_fails(self.save_torch(shaped, "shaped.bin"), "--gelu", "quick", "--heads", "2",
                           contains=("visual.proj", "[31, 24]", "[32, E]"))
        # The activation is not in the weights: named, or refused.
        self.convert_fails(bin_path, "--heads", "2", contains=("QuickGELU", "--gelu", "ViT-B-32-quickgelu"))
        # An open_clip name whose width is not the checkpoint's.
        self.convert_fails(bin_path, "--arch", "ViT-B-32-quickgelu", contains=("width=768", "32", "--heads"))
        self.convert_fails(bin_path, "--arch", "ViT-Q-99", contains=("ViT-Q-99", "open_clip"))
        m = self.convert(bin_path, "--arch", "ViT-B-32-quickgelu", "--heads", "2").metadata
        self.assertEqual((m["arch.gelu"], m["arch.pool_proj"], m["arch.norm_pre"], m["preprocess.interpolation"]),
                         ("quick", 24, 1, "bicubic"))

    def test_openai_clip_state_dict_is_quickgelu(self):
        state = self.torch_state(fixture("openclip", "quickgelu", "open_clip_pytorch_model.bin"))
        import torch
        state.update(input_resolution=torch.tensor(32), context_length=torch.tensor(8), vocab_size=torch.tensor(64))
        result = self.run_convert(self.save_torch(state, "openai.pt"), "--heads", "2", "-o", self.path("o.ovit"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("OpenAI CLIP state dict", result.stderr)
        self.assertEqual(self.convert(self.path("openai.pt"), "--heads", "2").metadata["arch.gelu"], "quick")

    # ------------------------------------------------------------------ ONNX

    def test_onnx_without_its_data_or_not_onnx(self):
        shutil.copy(fixture("onnx", "timm_tanh_external", "model.onnx"), self.path("model.onnx"))
        self.convert_fails(self.path("model.onnx"), contains=("model.onnx.data", "missing"))
        with open(self.path("garbage.onnx"), "wb") as f:
            f.write(b"\x08\x07garbage that is no protobuf" * 10)
        self.convert_fails(self.path("garbage.onnx"), contains=("garbage.onnx",))

    def test_onnx_preprocessing_notice_and_sidecars(self):
        result = self.run_convert(fixture("onnx", "timm_opset14", "model.onnx"), "-o", self.path("a.ovit"))
        self.assertEqual(result.returncode, 0, result.stderr)
        notes = [line for line in result.stderr.splitlines() if "carries no preprocessing" in line]
        self.assertEqual(len(notes), 1, result.stderr)
        self.assertIn("ImageNet", notes[0])
        # A timm name gives timm's recipe for it (the graph still gives the architecture).
        m = self.convert(fixture("onnx", "timm_opset14", "model.onnx"), "--arch", "vit_base_patch16_224").metadata
        self.assertEqual((m["preprocess.interpolation"], m["preprocess.mean"]), ("bicubic", [0.5] * 3))
        # The graph says the heads: flags are refused.
        self.convert_fails(fixture("onnx", "timm_opset14", "model.onnx"), "--heads", "2",
                           contains=("ONNX", "architecture"))

    def test_onnx_patch_conv_valid_padding_is_none_same_is_refused(self):
        import onnx
        source = fixture("optimum", "siglip_vision", "model.onnx")
        model = onnx.load(source)
        conv = next(n for n in model.graph.node if n.op_type == "Conv")
        self.assertEqual([a.s for a in conv.attribute if a.name == "auto_pad"], [b"VALID"])  # as optimum wrote it
        self.assertEqual(self.convert(source).metadata["arch.pool"], "map")
        for mode in ("SAME_UPPER", "SAME_LOWER"):
            next(a for a in conv.attribute if a.name == "auto_pad").s = mode.encode()
            onnx.save(model, self.path(f"{mode}.onnx"))
            self.convert_fails(self.path(f"{mode}.onnx"), contains=("Conv", f"auto_pad {mode}", "no padding"))

    def test_onnx_labels_make_a_bias_free_last_layer_a_classifier(self):
        path = fixture("onnx", "hf_clip_projection", "model.onnx")
        m = self.convert(path).metadata
        self.assertEqual((m["arch.head"], m["arch.pool_proj"]), ("none", 24))
        with open(self.path("labels.txt"), "w") as f:
            f.write("".join(f"class {i}\n" for i in range(24)))
        m = self.convert(path, "--labels", self.path("labels.txt"), output="labelled.ovit").metadata
        self.assertEqual((m["arch.head"], m["arch.num_classes"], m.get("arch.pool_proj", 0)), ("linear", 24, 0))


if __name__ == "__main__":
    unittest.main()
