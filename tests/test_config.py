"""Config parsing: the shipped configs load; every kind of mistake fails with one clear line."""

import pytest
import yaml

from tsslbp.config import (
    ConfigError,
    Dataset,
    KernelTarget,
    LayerKind,
    LossKind,
    OutputMeasure,
    load_config,
    parse_config,
)
from tsslbp.configs import CONFIG_DIR

CONFIGS = CONFIG_DIR

GOOD = {
    "Network": {
        "dataset": "digits",
        "n_steps": 5,
        "tau_m": 5,
        "tau_s": 3,
        "lr": 0.001,
        "loss": "kernel",
    },
    "Layers": {
        "hidden": {
            "type": "linear",
            "n_inputs": 64,
            "n_outputs": 32,
            "weight_scale": 1,
            "threshold": 1,
        },
        "drop": {"type": "dropout", "p": 0.2},
        "output": {"type": "linear", "n_inputs": 32, "n_outputs": 10, "threshold": 1},
    },
}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.n_steps in (5, 30, 100) and cfg.layers[-1].n_outputs == cfg.data.n_class


def test_paper_fmnist_config_is_the_400_400_mlp():
    cfg = load_config(CONFIGS / "fmnist_mlp_400_400.yaml")
    assert cfg.data.dataset is Dataset.FASHION_MNIST
    assert [layer.n_outputs for layer in cfg.layers] == [400, 400, 10]
    assert (cfg.neuron.tau_m, cfg.neuron.tau_s, cfg.train.lr) == (5.0, 3.0, 5e-4)


def test_round_trip_through_dict():
    cfg = parse_config(GOOD, "good.yaml")
    again = parse_config(cfg.to_dict(), "good.yaml")
    assert again == cfg
    assert cfg.layers[1].type is LayerKind.DROPOUT and cfg.train.loss is LossKind.KERNEL


def test_loss_definitions_default_to_the_paper_and_round_trip():
    cfg = parse_config(GOOD, "good.yaml")
    assert cfg.train.kernel_target is KernelTarget.ONCE
    assert {cfg.train.count_loss_on, cfg.train.softmax_on, cfg.train.predict_on} == {
        OutputMeasure.SPIKES
    }
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    raw["Network"].update(
        {"kernel_target": "twice", "count_loss_on": "psp", "softmax_on": "psp", "predict_on": "psp"}
    )
    cfg = parse_config(raw, "ref.yaml")
    network = cfg.to_dict()["Network"]  # what checkpoints and manifests store
    assert [network[k] for k in ("kernel_target", "count_loss_on", "softmax_on", "predict_on")] == [
        "twice",
        "psp",
        "psp",
        "psp",
    ]
    assert parse_config(cfg.to_dict()) == cfg.replace()


def test_original_schema_spellings_are_accepted():
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    raw["Network"].update({"dataset": "FashionMNIST", "rule": "TSSLBP", "model": "LIF"})
    raw["Layers"]["hidden"]["n_inputs"] = 784
    cfg = parse_config(raw)
    assert cfg.data.dataset is Dataset.FASHION_MNIST


def _mutate(path, value):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "path,value,key,expected",
    [
        (("Network", "lr"), "fast", "Network.lr", "a number > 0"),
        (("Network", "lr"), -1, "Network.lr", "a number > 0"),
        (("Network", "n_steps"), 0, "Network.n_steps", "an integer in [1, 100000]"),
        (("Network", "n_steps"), 2.5, "Network.n_steps", "an integer in [1, 100000]"),
        (("Network", "epochs"), True, "Network.epochs", "an integer in [1, 1000000]"),
        (("Network", "loss"), "mse", "Network.loss", "one of kernel, count, softmax"),
        (
            ("Network", "dataset"),
            "imagenet",
            "Network.dataset",
            "one of digits, mnist, fashion_mnist",
        ),
        (("Network", "learning_rate"), 0.1, "Network.learning_rate", "one of the keys"),
        (("Network", "tau_m"), 1, "Network.tau_m", "a number > 1"),
        (
            ("Layers", "hidden", "type"),
            "conv3d",
            "Layers.hidden.type",
            "one of linear, conv, pooling, dropout",
        ),
        (("Layers", "hidden", "n_inputs"), 63, "Layers.hidden.n_inputs", "64"),
        (
            ("Layers", "hidden", "n_outputs"),
            KeyError,
            "Layers.hidden.n_outputs",
            "an integer in [1, 4194304]",
        ),
        (("Layers", "hidden", "kernel"), 3, "Layers.hidden.kernel", "one of the keys"),
        (("Layers", "drop", "p"), 1.0, "Layers.drop.p", "a number in [0, 1)"),
        (("Layers", "output", "n_outputs"), 9, "Layers.output.n_outputs", "n_class = 10"),
        (("Layers", "output", "n_inputs"), 31, "Layers.output.n_inputs", "32"),
        (("Network", "desired_count"), 6, "Network.desired_count", "at most n_steps = 5"),
        (("Network", "kernel_target"), "thrice", "Network.kernel_target", "one of once, twice"),
        (("Network", "count_loss_on"), "voltage", "Network.count_loss_on", "one of spikes, psp"),
        (("Network", "softmax_on"), 1, "Network.softmax_on", "one of spikes, psp"),
        (("Network", "predict_on"), "count", "Network.predict_on", "one of spikes, psp"),
        (("Network", "lr_schedule"), "step", "Network.lr_schedule", "one of constant, cosine"),
        (("Network", "weight_decay"), -0.1, "Network.weight_decay", "a number >= 0"),
        (("Network", "ema_decay"), 1.0, "Network.ema_decay", "a number in [0, 1)"),
        (("Network", "ema_decay"), -0.5, "Network.ema_decay", "a number in [0, 1)"),
        (("Layers",), {}, "Layers", "a non-empty mapping"),
        (("Network",), KeyError, "Network", "a block of keys"),
    ],
)
def test_invalid_config_names_file_key_and_expectation(tmp_path, path, value, key, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_mutate(path, value)))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    message = str(err.value)
    assert "\n" not in message, f"expected one line, found {message!r}"
    assert message.startswith(f"{f}: {key}: expected "), (
        f"expected file and key first, found {message!r}"
    )
    assert expected in message, f"expected {expected!r} in {message!r}"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("Network:\n  lr: [1, 2\nLayers: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_config(f)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of keys"):
        load_config(f)
