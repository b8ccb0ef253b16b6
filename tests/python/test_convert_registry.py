"""timm models described by timm's own registration (weights/onevit_convert/timm_registry.json).

A registered name's heads, norms, activation, pooling and tokens are those of the class it is
registered with, built with its registered arguments and the hub config's model_args; any
layer the engine cannot run is refused by its name, decided from that architecture and not
from the tensors: the checkpoints here are plain ViTs, so a refusal can only come from the
description. Expected values are timm's registrations as written in timm's source, not values
read back from the snapshot.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'
"""

import os
import sys

import numpy as np

from test_convert import IMAGE, K, PATCH, ConvertTestCase, f32, make_canonical, timm_state, \
    write_safetensors

from onevit_convert import timm_architecture, timm_registry
from onevit_convert.ovit_reader import check_tensor_set, read_ovit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import every_feature  # noqa: E402

# The tiny test model's sizes as model_args, the heads left to the registration: a width that
# 3, 12 and 16 heads divide.
D, MLP = 48, 192
SIZES = {"embed_dim": D, "depth": 2, "mlp_ratio": MLP / D, "img_size": IMAGE, "patch_size": PATCH}
PE_SPATIAL = ("vit_pe_spatial_tiny_patch16_512", "vit_pe_spatial_small_patch16_512",
              "vit_pe_spatial_base_patch16_512", "vit_pe_spatial_large_patch14_448")


def hub_config(architecture, pool=None, **model_args):
    """A config.json as timm's save_config_for_hf writes it."""
    config = {"architecture": architecture, "num_classes": K, "num_features": D,
              "model_args": model_args, "pretrained_cfg": {"num_classes": K}}
    if pool:
        config["global_pool"] = pool
    return config


class RegisteredArchitectures(ConvertTestCase):
    def plain_vit(self, class_token=True, norm_pre=False, seed=40):
        """A plain timm ViT state dict (no feature tensors of any kind)."""
        state = timm_state(make_canonical(seed=seed, dim=D, mlp=MLP))
        if not class_token:
            del state["cls_token"]
            state["pos_embed"] = state["pos_embed"][:, 1:]
        if norm_pre:
            rng = np.random.default_rng(seed)
            state["norm_pre.weight"] = rng.standard_normal(D).astype(np.float32)
            state["norm_pre.bias"] = rng.standard_normal(D).astype(np.float32)
        path = self.path(f"plain{seed}.safetensors")
        write_safetensors(path, state)
        return path

    def test_pe_spatial_is_read_with_its_rotary_embedding(self):
        # eva.py registers them with use_rot_pos_emb=True (an axial RoPE, which has no tensors), no
        # global_pool (Eva's default: the patch average) and LayerNorm eps 1e-5: none of it is in the tensors.
        ckpt = self.plain_vit()
        for name in PE_SPATIAL[:3]:
            config = self.write_json(f"{name}.json", hub_config(name, **SIZES, num_classes=0))
            m = self.convert(ckpt, "--config", config).metadata
            self.assertEqual((m["arch.features"], m["arch.pool"], m["arch.norm_eps"]),
                             (["rope"], "mean_patches", f32(1e-5)), name)
            # The registered width contradicts the checkpoint's: refused, never read with the wrong heads.
            self.convert_fails(ckpt, "--arch", name, contains=(name, "width 48"))

    def test_model_args_decide_the_features(self):
        ckpt = self.plain_vit()
        config = self.write_json("c.json", hub_config("vit_tiny_patch16_224", "token", **SIZES, block_fn="ResPostBlock"))
        self.assertEqual(self.convert(ckpt, "--config", config).metadata["arch.features"], ["post_norm"])
        # A feature whose tensors the checkpoint lacks (or a plain tensor it must not have) is refused naming it.
        for args, tensor in (({"qk_norm": True}, "blocks.0.attn.q_norm.weight"),
                             ({"norm_layer": "rmsnorm"}, "blocks.0.norm1.bias"),
                             ({"scale_mlp_norm": True}, "blocks.0.mlp.norm.weight"),
                             ({"pos_embed": "none"}, "pos_embed")):
            config = self.write_json("c.json", hub_config("vit_tiny_patch16_224", "token", **SIZES, **args))
            self.convert_fails(ckpt, "--config", config, contains=(tensor,))

    def test_model_args_the_class_does_not_take_are_an_error(self):
        config = self.write_json("c.json", hub_config("vit_tiny_patch16_224", **SIZES, use_rot_pos_emb=True))
        self.convert_fails(self.plain_vit(), "--config", config,
                           contains=("model_args.use_rot_pos_emb", "VisionTransformer"))

    def test_heads_pooling_and_tokens_come_from_the_registration(self):
        # vision_transformer.py: vit_base_patch16_gap_224 = num_heads=16, class_token=False,
        # global_pool='avg', fc_norm=False (the final norm stays before the pooling).
        config = self.write_json("c.json", hub_config("vit_base_patch16_gap_224", **SIZES))
        m = self.convert(self.plain_vit(class_token=False), "--config", config).metadata
        self.assertEqual((m["arch.heads"], m["arch.head_dim"], m["arch.pool"], m["arch.class_token"],
                          m["arch.prefix_tokens"], m["arch.final_norm"], m["arch.head_norm"]),
                         (16, 3, "mean_patches", 0, 0, 1, 0))

    def test_activation_and_norm_eps_come_from_the_registration(self):
        # vit_so400m_patch16_siglip_gap_256: act_layer='gelu_tanh' (and 16 heads).
        config = self.write_json("c.json", hub_config("vit_so400m_patch16_siglip_gap_256", **SIZES))
        m = self.convert(self.plain_vit(class_token=False), "--config", config).metadata
        self.assertEqual((m["arch.gelu"], m["arch.heads"], m["arch.norm_eps"]), ("tanh", 16, f32(1e-6)))
        # vit_base_patch16_clip_224: pre_norm=True, norm_layer=partial(LayerNorm, eps=1e-5).
        config = self.write_json("c.json", hub_config("vit_base_patch16_clip_224", **SIZES))
        m = self.convert(self.plain_vit(norm_pre=True), "--config", config).metadata
        self.assertEqual((m["arch.norm_eps"], m["arch.norm_pre"], m["arch.heads"]), (f32(1e-5), 1, 12))

    def test_registered_eva_models_are_read_as_eva_builds_them(self):
        # eva_giant_patch14_224 (EVA-01) has no new layer, but eva.py's Eva keeps q/v biases apart:
        # a VisionTransformer state dict is not its layout.
        self.convert_fails(self.plain_vit(), "--arch", "eva_giant_patch14_224",
                           contains=("blocks.0.attn.q_bias", "Eva"))
        # eva02: split q/k/v and a SwiGLU MLP: a plain ViT's tensors are not its layout.
        self.convert_fails(self.plain_vit(), "--arch", "eva02_base_patch14_224",
                           contains=("blocks.0.attn.q_proj.weight", "Eva", "glu_split"))

    def test_parallel_things_blocks_need_their_branches(self):
        self.convert_fails(self.plain_vit(), "--arch", "vit_small_patch16_18x2_224",
                           contains=("attns.N / ffns.N", "ParallelThingsBlock"))


class UnregisteredNames(ConvertTestCase):
    def test_a_name_timm_does_not_register_is_described_by_its_words(self):
        self.assertIsNone(timm_registry.lookup("vit_wee_patch8_32"))
        ckpt = self.path("w.safetensors")
        # 'wee' models are 256 wide (a width the size word's models lack is refused: test_convert).
        write_safetensors(ckpt, timm_state(make_canonical(seed=41, dim=256, mlp=512)))
        m = self.convert(ckpt, "--arch", "vit_wee_patch8_32").metadata
        self.assertEqual((m["arch.heads"], m["arch.norm_eps"], m["arch.pool"]), (4, f32(1e-6), "token"))

    def test_an_eva_layout_under_an_unregistered_name_is_refused(self):
        state = timm_state(make_canonical(seed=42))
        state["blocks.0.gamma_1"] = np.ones(D, np.float32)
        ckpt = self.path("e.safetensors")
        write_safetensors(ckpt, state)
        self.convert_fails(ckpt, "--arch", "vit_wee_patch8_32", contains=("eva.py's Eva block layout",))


class Snapshot(ConvertTestCase):
    def test_every_registered_name_is_described(self):
        snapshot = timm_registry._snapshot()
        modules = {entry["module"] for entry in snapshot["models"].values()}
        self.assertEqual(modules, {"vision_transformer", "deit", "eva", "vision_transformer_relpos"})
        for name in snapshot["models"]:
            reg = timm_registry.lookup(name)
            a = timm_architecture.describe(reg, reg.arguments())
            self.assertGreaterEqual(a.heads, 1, name)
        for name in PE_SPATIAL:
            reg = timm_registry.lookup(name)
            a = timm_architecture.describe(reg, reg.arguments())
            # eva.py: norm_layer=partial(LayerNorm, eps=1e-5), Eva's default global_pool='avg'.
            self.assertEqual((a.cls, a.norm, a.norm_eps, a.global_pool, a.gelu), ("Eva", "layernorm", 1e-5, "avg", "erf"),
                             name)
            self.assertEqual(a.features, ["rope"], name)
            self.assertEqual((a.rope.kind, a.rope.grid_indexing, a.rope.grid_offset), ("cat", "xy", 1.0), name)


class VersionTwoFiles(ConvertTestCase):
    """A described model with features, converted with every feature allowed (as the engine will)."""

    FIXTURES = os.path.join(ROOT, "tests", "fixtures", "modern")

    def convert_allowing_all(self, variant, *args):
        d = os.path.join(self.FIXTURES, variant)
        out = self.path("all.ovit")
        code, err = every_feature.convert(ROOT, [os.path.join(d, "model.safetensors"), "--config",
                                                 os.path.join(d, "config.json"), *args, "-o", out])
        self.assertEqual(code, 0, err)
        ovit = read_ovit(out)
        check_tensor_set(ovit)
        return ovit

    def test_features_make_a_version_2_file_with_their_tensors(self):
        ovit = self.convert_allowing_all("dinov3-small")
        m = ovit.metadata
        self.assertEqual(ovit.version, 2)
        self.assertEqual(m["arch.features"], ["no_pos_embed", "rope"])
        # timm's DINOv3 rotates half-and-half (rope_rotate_half=True); one table for the model.
        self.assertEqual((m["arch.rope_layout"], m["arch.rope_per_block"]), ("half", 0))
        self.assertNotIn("pos_embed", ovit.tensors)
        cos, sin = ovit.tensors["rope.cos"], ovit.tensors["rope.sin"]
        prefix, grid = m["arch.prefix_tokens"], (48 // 16) ** 2
        self.assertEqual((prefix, cos.shape, sin.shape), (5, (5 + grid, 8), (5 + grid, 8)))   # 48 wide, 6 heads
        # Prefix tokens (class + 4 registers) are not rotated; every row is a rotation.
        self.assertTrue(np.array_equal(cos[:prefix], np.ones((prefix, 8), np.float32)))
        self.assertTrue(np.array_equal(sin[:prefix], np.zeros((prefix, 8), np.float32)))
        self.assertLess(np.abs(cos * cos + sin * sin - 1).max(), 1e-6)
        # The centre row of a 3x3 grid has coordinates (0, 0): angle 0.
        centre = prefix + 4
        self.assertTrue(np.allclose(cos[centre], 1) and np.allclose(sin[centre], 0, atol=1e-7))

    def test_rope_tables_follow_a_new_input_size(self):
        ovit = self.convert_allowing_all("rope-mixed", "--image-size", "64x32")
        m = ovit.metadata
        self.assertEqual((m["arch.image_height"], m["arch.image_width"], m["arch.rope_per_block"]), (64, 32, 1))
        self.assertEqual(ovit.tensors["blocks.1.attn.rope.cos"].shape, (6, 1 + 4 * 2, 8))

    def test_features_the_engine_does_not_run_are_refused_by_name(self):
        # Today's engine runs every feature; the refusal stays for the next feature a format adds.
        from onevit_convert import errors, features
        self.assertEqual(features.ENGINE_SUPPORTED, frozenset(features.FEATURES))
        with self.assertRaises(errors.ConvertError) as caught:
            features.check_runnable(["no_pos_embed", "rope"], ["differential attention"],
                                    "vit_small_patch16_rope_224", supported=frozenset({"no_pos_embed"}))
        message = str(caught.exception)
        for text in ("vit_small_patch16_rope_224", "rope (", "cannot run yet", "differential attention"):
            self.assertIn(text, message)
        self.assertNotIn("no_pos_embed", message)

    def test_mixed_rope_frequencies_of_the_wrong_shape_are_an_error(self):
        from safetensors_io import load_file, save_file
        d = os.path.join(self.FIXTURES, "rope-mixed")
        state = load_file(os.path.join(d, "model.safetensors"))
        state["rope.freqs"] = state["rope.freqs"][:, :1]
        save_file(state, self.path("bad.safetensors"))
        code, err = every_feature.convert(ROOT, [self.path("bad.safetensors"), "--config",
                                                 os.path.join(d, "config.json"), "-o", self.path("bad.ovit")])
        self.assertEqual(code, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("rope.freqs", err)
        self.assertIn("[2, 2, 6, 4]", err)

    def test_bad_checkpoints_of_a_described_layout_are_one_line_errors(self):
        from safetensors_io import load_file, save_file
        d = os.path.join(self.FIXTURES, "eva02-base-split-qkv-mlp-norm")
        original = load_file(os.path.join(d, "model.safetensors"))
        k = original["blocks.0.attn.k_proj.weight"]
        cases = {
            "narrower k_proj": ({"blocks.0.attn.k_proj.weight": k[:, :-8]}, (), ("blocks.0", "inconsistent shapes")),
            "no mlp.norm": ({}, ("blocks.1.mlp.norm.weight",), ("blocks.1.mlp.norm.weight", "Eva")),
            "an extra tensor": ({"blocks.0.attn.extra": k}, (), ("blocks.0.attn.extra",)),
            "fc1_x wider than fc1_g": ({"blocks.0.mlp.fc1_x.weight": np.concatenate([original["blocks.0.mlp.fc1_x.weight"]] * 2)},
                                       (), ("blocks.0.mlp.fc1.weight",)),
        }
        for case, (replace, remove, contains) in cases.items():
            state = {name: value for name, value in original.items() if name not in remove}
            state.update(replace)
            save_file(state, self.path("bad.safetensors"))
            code, err = every_feature.convert(ROOT, [self.path("bad.safetensors"), "--config",
                                                     os.path.join(d, "config.json"), "-o", self.path("bad.ovit")])
            self.assertEqual(code, 1, case)
            self.assertEqual(len(err.strip().splitlines()), 1, f"{case}: {err}")
            self.assertNotIn("Traceback", err, case)
            for text in contains:
                self.assertIn(text, err, case)
