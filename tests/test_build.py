import pytest
import torch

from backbone.models import ModelConfig, build_model, load_model, save_model
from backbone.models.local_global import LocalGlobalNet


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(embedding_dim=32),
        ModelConfig(embedding_dim=32, attention="cbam", branch_dim=16),
        ModelConfig(embedding_dim=32, attention="transformer", branch_dim=16, pair_head=True, distance="euclidean"),
        ModelConfig(backbone="resnet18", embedding_dim=16),
    ],
)
def test_save_load_round_trip_gives_identical_embeddings(config, tmp_path):
    torch.manual_seed(0)
    model = build_model(config)
    model.train()
    model(torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64))  # move the batch-norm statistics
    model.eval()
    save_model(model, config, tmp_path / "m.pt", extra={"epoch": 3})
    loaded, loaded_config, ckpt = load_model(tmp_path / "m.pt")
    x = torch.randn(3, 3, 64, 64)
    assert loaded_config == config and ckpt["epoch"] == 3
    assert torch.equal(model.embed(x), loaded.embed(x))
    assert isinstance(loaded.net, LocalGlobalNet) == (config.attention is not None)


def test_config_defaults_and_errors(tmp_path):
    assert ModelConfig().image_size == 112 and ModelConfig(backbone="inception_resnet_v1").image_size == 160
    assert ModelConfig(backbone="resnet18").image_size == 224 and ModelConfig(input_size=96).image_size == 96
    with pytest.raises(ValueError, match="unknown settings \\['model.depth'\\]"):
        ModelConfig.from_dict({"depth": 3})
    with pytest.raises(FileNotFoundError, match="checkpoint .* does not exist"):
        load_model(tmp_path / "none.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a backbone checkpoint"):
        load_model(tmp_path / "other.pt")
