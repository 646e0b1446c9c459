"""The course's small ViT and ST-ViT (stn_course.vision_transformer)."""
import pytest
import torch
from torch import nn

from stn_course.experiments import run_experiment
from stn_course.recipes import default_config
from stn_course.registry import build_classifier
from stn_course.vision_transformer import (
    MultiHeadSelfAttention,
    VisionTransformer,
    attention_rollout,
    class_token_map,
    scaled_dot_product_attention,
    st_vit,
    vit,
)

MEAN, STD = [0.1307], [0.3081]


def _copy_into_torch(attention: MultiHeadSelfAttention, dim: int, heads: int) -> nn.MultiheadAttention:
    reference = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(attention.qkv.weight)
        reference.in_proj_bias.copy_(attention.qkv.bias)
        reference.out_proj.weight.copy_(attention.proj.weight)
        reference.out_proj.bias.copy_(attention.proj.bias)
    return reference


@pytest.mark.parametrize("heads", [1, 4])
def test_hand_written_attention_equals_torch_multihead_attention(heads):
    torch.manual_seed(0)
    dim = 64
    attention = MultiHeadSelfAttention(dim, heads)
    reference = _copy_into_torch(attention, dim, heads)
    x = torch.randn(3, 37, dim)
    ours, weights = attention(x, return_attention=True)
    theirs, their_weights = reference(x, x, x, need_weights=True, average_attn_weights=False)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights, their_weights, atol=1e-6, rtol=0)


def test_scaled_dot_product_attention_rows_are_distributions_and_match_torch():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 2, 5, 8).unbind(0)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape, patch, tokens", [((1, 42, 42), 7, 37), ((1, 28, 28), 7, 17), ((3, 32, 32), 4, 65)])
def test_shapes_of_tokens_logits_and_attention_maps(shape, patch, tokens):
    model = vit(shape, MEAN * shape[0], STD * shape[0])
    assert model.patch_size == patch
    x = torch.rand(2, *shape)
    assert model.tokens(x).shape == (2, tokens, 64)
    assert model(x).shape == (2, 10)
    maps = model.attention_maps(x)
    assert len(maps) == 6 and all(m.shape == (2, 4, tokens, tokens) for m in maps)
    side = shape[-1] // patch
    assert class_token_map(model, x).shape == class_token_map(model, x, rollout=False).shape == (2, side, side)


def test_patch_sides_must_divide_the_image():
    with pytest.raises(ValueError, match="multiples of patch_size"):
        VisionTransformer((1, 30, 30), MEAN, STD, patch_size=7)


def test_rollout_rows_are_distributions_and_identity_attention_rolls_out_to_identity():
    weights = torch.softmax(torch.randn(2, 4, 5, 5), dim=-1)
    rollout = attention_rollout([weights, weights, weights])
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 5))
    identity = torch.eye(5).expand(2, 4, 5, 5)
    torch.testing.assert_close(attention_rollout([identity, identity]), torch.eye(5).expand(2, 5, 5))


def test_st_vit_starts_at_the_identity_and_is_registered():
    torch.manual_seed(0)
    model = build_classifier("st-vit", (1, 42, 42), MEAN, STD)
    x = torch.rand(2, 1, 42, 42)
    sampled = model.transformer(x)
    theta = model.transformer.last_theta
    torch.testing.assert_close(theta, torch.tensor([[1.0, 0, 0, 0, 1, 0]]).expand(2, 6))
    torch.testing.assert_close(sampled, x, atol=1e-5, rtol=0)  # the identity resamples pixel centres exactly
    assert isinstance(model.classifier, VisionTransformer) and model(x).shape == (2, 10)
    windowed = st_vit((1, 42, 42), MEAN, STD, window=28)
    assert windowed.classifier.grid_size == (4, 4)


def test_a_short_training_run_through_the_course_machinery_learns(tmp_path):
    """Quick mode (conftest): RTS digits, one epoch through run_experiment; then the same
    model fits 64 of those digits in 40 steps, which an untrainable model could not."""
    experiment = run_experiment(default_config("rts-mnist", "vit", 1, quick=True), save=False,
                                use_checkpoints=False)
    history = experiment.history
    assert history.epochs == 1 and history.trained_now == 1
    assert 0.0 <= history.test_accuracy[0] <= 1.0 and history.train_loss[0] > 0
    images, labels = next(iter(experiment.train_loader))
    images, labels = images[:64], labels[:64]
    model = experiment.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("shape", [(1, 42, 42), (1, 28, 28), (3, 32, 32)])
def test_counted_costs_match_the_built_model(shape):
    from stn_course.models import count_parameters
    from stn_course.vision_transformer import default_patch_size, vit_costs

    patch = default_patch_size(shape)
    costs = vit_costs(shape[-1], patch, channels=shape[0])
    assert costs["parameters"] == count_parameters(vit(shape, MEAN * shape[0], STD * shape[0]))
    assert costs["tokens"] == (shape[-1] // patch) ** 2 + 1
    # attention is quadratic in the tokens, the rest linear: 28x28 with 7x7 patches (17 tokens)
    # against 14x14 patches (5 tokens)
    small, large = vit_costs(28, 14), vit_costs(28, 7)
    assert large["attention_flops"] * 25 == small["attention_flops"] * 17 ** 2
    assert large["linear_flops"] * 5 == small["linear_flops"] * 17


@pytest.mark.parametrize("name", ["vit", "st-vit"])
def test_vit_and_st_vit_train_on_traffic_signs(name):
    """GTSRB through the course machinery (quick mode): colour 32x32 crops cut into 4x4 patches
    (64 patches, 65 tokens), 43 classes; one short epoch runs and gives a finite loss."""
    experiment = run_experiment(default_config("gtsrb", name, 1, quick=True), save=False,
                                use_checkpoints=False, progress=False)
    classifier = experiment.model.classifier if name == "st-vit" else experiment.model
    assert classifier.patch_size == 4 and classifier.grid_size == (8, 8)
    assert classifier.head.out_features == 43 and classifier.patch_embedding.in_channels == 3
    history = experiment.history
    assert history.epochs == 1 and 0 < history.train_loss[0] < float("inf")


def test_attention_tools_run_on_the_images_device(meta):
    model = build_classifier("vit", (1, 28, 28), (0.5,), (0.5,)).to(meta)
    images = torch.zeros(2, 1, 28, 28, device=meta)
    for rollout in (True, False):
        assert class_token_map(model, images, rollout=rollout).device == meta
    assert attention_rollout(model.attention_maps(images)).device == meta
    q = torch.zeros(2, 5, 8, device=meta)
    assert {t.device for t in scaled_dot_product_attention(q, q, q)} == {meta}


def test_vit_costs_count_the_patch_embedding_and_the_head():
    from stn_course.vision_transformer import vit_costs

    # the embedding reads every pixel once whatever the patch size: 2 H W C D FLOPs, plus the head's 2 D classes
    for patch in (4, 7, 14):
        assert vit_costs(28, patch)["embedding_flops"] == 2 * 28 * 28 * 64 + 2 * 64 * 10
    photo = vit_costs(224, 32, channels=3)
    assert 0.9 < photo["embedding_flops"] / photo["linear_flops"] < 1.1, "as large as the six blocks' linear layers"
