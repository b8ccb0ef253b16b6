"""A Hugging Face ViTConfig (config.json) for a ViT of given shape: how the tests and
weights/train_digits.py tell weights/convert.py what tensor shapes cannot (heads, eps)."""


def vit_config(*, dim, depth, heads, mlp_dim, image_size, patch_size, channels, eps, labels):
    return {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "hidden_size": dim,
        "num_hidden_layers": depth,
        "num_attention_heads": heads,
        "intermediate_size": mlp_dim,
        "image_size": image_size,
        "patch_size": patch_size,
        "num_channels": channels,
        "layer_norm_eps": eps,
        "hidden_act": "gelu",
        "qkv_bias": True,
        "id2label": {str(i): label for i, label in enumerate(labels)},
        "label2id": {label: i for i, label in enumerate(labels)},
    }
