"""Bundle discovery and training plans of the MONAI Label app (no MONAI Label needed).

The training plan is checked by merging its config files with MONAI's own ``ConfigParser`` (the merge
``monai.bundle run --config_file [...]`` performs), not by reading back what the planner wrote.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from monai.bundle import ConfigParser

from monai_implicit_label.bundles import (
    default_bundles_dir,
    find_segmentation_bundles,
    read_segmentation_bundle,
    select_bundles,
)
from monai_implicit_label.training import (
    ALLOWED_OVERRIDES,
    OverrideError,
    TrainingFailed,
    TrainPlan,
    check_overrides,
    checkpoint_epoch,
    plan_training,
    run_training,
    validation_interval,
    write_datalist,
)

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "label"
BUNDLE = REPO / "bundles" / "hyperunet_lits"


def _metadata(outputs: dict, spatial_shape=("8*n", "8*n", "8*n")) -> dict:
    return {
        "version": "1.2.3",
        "description": "toy",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "spatial_shape": list(spatial_shape)}},
            "outputs": outputs,
        },
    }


def _bundle(root: Path, name: str, outputs: dict, inference: bool = True, **kwargs) -> Path:
    folder = root / name / "configs"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(_metadata(outputs, **kwargs)))
    if inference:
        (folder / "inference.json").write_text("{}")
    return folder.parent


SEG = {"pred": {"format": "segmentation", "channel_def": {"0": "background", "1": "left", "2": "right"}}}


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """The real hyperunet_lits configs in a temporary bundle folder (training plans write into it)."""
    dst = tmp_path / "bundles" / "hyperunet_lits"
    shutil.copytree(BUNDLE, dst, ignore=shutil.ignore_patterns("data", "models", "logs", "eval", "__pycache__"))
    return dst


def test_real_bundle_is_served_with_its_channel_def():
    assert default_bundles_dir() == REPO / "bundles"
    bundle = find_segmentation_bundles()["hyperunet_lits"]
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    channel_def = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    expected = {name: int(value) for value, name in channel_def.items() if name != "background"}
    assert bundle.labels == expected == {"liver": 1, "tumour": 2}
    assert bundle.spatial_dims == 3 and bundle.version == meta["version"]
    assert bundle.train_config == BUNDLE / "configs" / "train.json"
    assert bundle.checkpoint == BUNDLE / "models" / "model.pt"
    assert [b.name for b in select_bundles(models="hyperunet_lits")] == ["hyperunet_lits"]


def test_input_channels_come_from_the_metadata(tmp_path):
    meta = json.loads((REPO / "bundles" / "nerdunet_wmh" / "configs" / "metadata.json").read_text())
    spec = meta["network_data_format"]["inputs"]["image"]
    expected = tuple(spec["channel_def"][str(i)] for i in range(spec["num_channels"]))
    assert find_segmentation_bundles()["nerdunet_wmh"].input_channels == expected == ("T1", "FLAIR")
    assert find_segmentation_bundles()["hyperunet_lits"].input_channels == ("image",)
    folder = _bundle(tmp_path, "bad", SEG)
    metadata = json.loads((folder / "configs" / "metadata.json").read_text())
    metadata["network_data_format"]["inputs"]["image"]["num_channels"] = 0
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="num_channels"):
        read_segmentation_bundle(folder)


def test_discovery_skips_non_segmentation_folders(tmp_path):
    _bundle(tmp_path, "seg2d", SEG, spatial_shape=(16, 16))
    _bundle(tmp_path, "classifier", {"pred": {"format": "classification", "channel_def": {"0": "a"}}})
    _bundle(tmp_path, "no_inference", SEG, inference=False)
    (tmp_path / "not_a_bundle").mkdir()
    (tmp_path / "README.md").write_text("x")
    found = find_segmentation_bundles(tmp_path)
    assert list(found) == ["seg2d"]
    assert found["seg2d"].labels == {"left": 1, "right": 2} and found["seg2d"].spatial_dims == 2
    assert found["seg2d"].train_config is None and found["seg2d"].multi_gpu_config is None
    assert [b.name for b in select_bundles(tmp_path, "all")] == ["seg2d"]
    assert [b.name for b in select_bundles(tmp_path, None)] == ["seg2d"]


@pytest.mark.parametrize(
    "models, match",
    [
        ("classifier", "no segmentation output"),
        ("no_inference", "inference.json"),
        ("missing", "does not exist"),
        ("seg, ../seg", "folder names"),
    ],
)
def test_select_explains_why_a_model_is_not_served(tmp_path, models, match):
    _bundle(tmp_path, "seg", SEG)
    _bundle(tmp_path, "classifier", {"pred": {"format": "classification", "channel_def": {"0": "a"}}})
    _bundle(tmp_path, "no_inference", SEG, inference=False)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as err:
        select_bundles(tmp_path, models)
    if "../" not in models:
        assert "['seg']" in str(err.value)  # lists what can be served


@pytest.mark.parametrize(
    "channel_def, match",
    [
        ({"0": "background"}, "no foreground"),
        ({"x": "liver"}, "integers"),
        (None, "channel_def"),
    ],
)
def test_bad_channel_def(tmp_path, channel_def, match):
    folder = _bundle(tmp_path, "b", {"pred": {"format": "segmentation", "channel_def": channel_def}})
    with pytest.raises(ValueError, match=match):
        read_segmentation_bundle(folder)


def test_no_bundle_at_all(tmp_path):
    with pytest.raises(ValueError, match="no segmentation bundle"):
        select_bundles(tmp_path)
    # a missing or invalid folder: the error names the option that sets it
    (tmp_path / "file").write_text("")
    for bad in (tmp_path / "missing", tmp_path / "file"):
        for find in (find_segmentation_bundles, select_bundles):
            with pytest.raises(FileNotFoundError, match="--conf bundles_dir"):
                find(bad)


@pytest.mark.parametrize("final_epoch", list(range(1, 31)))
@pytest.mark.parametrize("bundle_interval", [1, 4, 10])
def test_validation_interval_definition(final_epoch, bundle_interval):
    interval = validation_interval(final_epoch, bundle_interval)
    # brute force over every candidate: validation at the final epoch, never rarer than the bundle asks
    candidates = [d for d in range(1, bundle_interval + 1) if final_epoch % d == 0]
    assert interval == max(candidates)
    assert final_epoch % interval == 0 and interval <= bundle_interval


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_validation_interval_rejects(bad):
    with pytest.raises(ValueError, match="positive integer"):
        validation_interval(bad, 10)


def _train_config() -> dict:
    return json.loads((BUNDLE / "configs" / "train.json").read_text())


def test_check_overrides_accepts_allow_listed_numbers():
    train = _train_config()
    ok = {"num_workers": 0, "num_samples": 1, "sw_batch_size": 8, "learning_rate": 1e-4, "batch_size": 4,
          "cache_rate": 0.5, "amp": False, "seed": 7}
    assert check_overrides(ok, train) == ok
    assert check_overrides(None, train) == {} and check_overrides({}, train) == {}
    # an integer learning rate is a number too; it is passed on as a float
    checked = check_overrides({"learning_rate": 1}, train)
    assert checked == {"learning_rate": 1.0} and type(checked["learning_rate"]) is float
    # every allow-listed id has a type and bounds: the bounds themselves are accepted
    for key, rule in ALLOWED_OVERRIDES.items():
        if key not in train or rule.kind is bool:
            continue
        if rule.high is not None:
            assert check_overrides({key: rule.high}, train) == {key: rule.high}
        if rule.low is not None and not rule.low_exclusive:
            assert check_overrides({key: rule.low}, train) == {key: rule.low}


# hostile overrides as a client can send them over HTTP; each must be refused with an error naming the id
HOSTILE_OVERRIDES = [
    # replace a component by a dict without "_" keys, then give it a target: MONAI would instantiate it
    ({"network_def": {"args": ["touch", "/tmp/pwned"]}, "network_def#_target_": "subprocess.run"}, "network_def"),
    ({"network": {"args": ["touch", "/tmp/pwned"]}, "network#_target_": "subprocess.run"}, "network"),
    ({"network_def#_target_": "subprocess.run"}, "network_def#_target_"),
    ({"train#trainer#_target_": "os.system"}, "train#trainer#_target_"),
    ({"train#handlers#0#_disabled_": True}, "train#handlers#0#_disabled_"),
    ({"_meta_#x": 1}, "_meta_#x"),
    ({"+train#handlers": []}, "+train#handlers"),
    ({"train#dataset#cache_rate": 0.5}, "train#dataset#cache_rate"),  # nested ids: none is allow-listed
    # path-valued ids redirect reads and writes
    ({"ckpt_dir": "/tmp/elsewhere"}, "ckpt_dir"),
    ({"log_dir": "/tmp/elsewhere"}, "log_dir"),
    ({"dataset_dir": "/etc"}, "dataset_dir"),
    ({"bundle_root": "/tmp"}, "bundle_root"),
    # config syntax in values
    ({"num_workers": "$__import__('os').system('true')"}, "num_workers"),
    ({"num_workers": "@epochs"}, "num_workers"),
    ({"batch_size": "%train#trainer"}, "batch_size"),
    ({"learning_rate": "0.1"}, "learning_rate"),  # no strings at all
    # ids that are not allow-listed, or that have a request option of their own
    ({"no_such_id": 1}, "no_such_id"),
    ({"patch_size": [16, 16, 8]}, "patch_size"),
    ({"epochs": 1000}, "max_epochs"),
    ({"val_interval": 1}, "val_interval"),
    # out of bounds
    ({"num_workers": -1}, "num_workers"),
    ({"num_workers": 10**6}, "num_workers"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"cache_rate": 1.5}, "cache_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    # bools are not numbers, numbers are not bools
    ({"num_workers": True}, "num_workers"),
    ({"amp": 1}, "amp"),
    ({"num_samples": [1]}, "num_samples"),
    ({"num_samples": {"x": 1}}, "num_samples"),
]


@pytest.mark.parametrize("overrides, name", HOSTILE_OVERRIDES, ids=[str(i) for i in range(len(HOSTILE_OVERRIDES))])
def test_check_overrides_refuses_hostile_ids_and_values(overrides, name):
    with pytest.raises(OverrideError) as err:
        check_overrides(overrides, _train_config())
    assert isinstance(err.value, ValueError)
    assert name in str(err.value), str(err.value)  # the message names the offending id (or the option to use)


def test_check_overrides_needs_the_id_in_the_bundle():
    # allow-listed, but absent from this bundle's train.json: nothing to override
    train = {k: v for k, v in _train_config().items() if k != "sw_batch_size"}
    with pytest.raises(OverrideError, match="sw_batch_size"):
        check_overrides({"sw_batch_size": 4}, train)
    with pytest.raises(TypeError, match="object"):
        check_overrides([("num_workers", 0)], _train_config())


def test_write_datalist(tmp_path):
    image, label = tmp_path / "a.nii.gz", tmp_path / "a_seg.nii.gz"
    image.write_bytes(b"0")
    label.write_bytes(b"0")
    path = write_datalist([{"image": str(image), "label": str(label), "extra": 1}], tmp_path / "out")
    content = json.loads(path.read_text())
    assert content["training"] == [{"image": str(image), "label": str(label)}]
    with pytest.raises(ValueError, match="no 'label'"):
        write_datalist([{"image": str(image)}], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing"):
        write_datalist([{"image": str(image), "label": str(tmp_path / "missing.nii.gz")}], tmp_path / "out")


def test_checkpoint_epoch(tmp_path):
    assert checkpoint_epoch(tmp_path / "none") == 0
    for name in ("checkpoint_epoch=2.pt", "checkpoint_epoch=11.pt", "model.pt", "checkpoint_epoch=99.pt.tmp",
                 "backup_of_checkpoint_epoch=98.pt"):
        (tmp_path / name).write_bytes(b"")
    assert checkpoint_epoch(tmp_path) == 11


def _merged(plan: TrainPlan) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(plan.configs)
    return parser


def test_plan_fresh_run_on_datastore(bundle_copy, tmp_path):
    bundle = read_segmentation_bundle(bundle_copy)
    data = tmp_path / "datastore"
    data.mkdir()
    (data / "dataset.json").write_text('{"training": []}')
    plan = plan_training(bundle, max_epochs=3, dataset_dir=data, overrides={"num_workers": 0}, device="cpu")
    assert plan.command[:5] == [sys.executable, "-m", "monai.bundle", "run", "--config_file"]
    assert json.loads(plan.command[5]) == plan.configs
    assert plan.configs == [str(bundle_copy / "configs" / "train.json"), str(plan.overrides_file)]
    assert "--meta_file" in plan.command and "--logging_file" in plan.command
    assert (plan.first_epoch, plan.final_epoch, plan.multi_gpu) == (1, 3, False)
    parser = _merged(plan)
    assert parser["epochs"] == 3 and parser["dataset_dir"] == str(data.resolve())
    assert parser["num_workers"] == 0 and parser["resume"] is True
    assert parser["val_interval"] == 3  # largest divisor of 3 that is <= the bundle's 10: validate at the end
    assert parser["device"] == "$torch.device('cpu')" and parser["amp"] is False
    # untouched ids keep the bundle's values
    original = json.loads((bundle_copy / "configs" / "train.json").read_text())
    assert parser["patch_size"] == original["patch_size"] and parser["train#handlers"] == original["train"]["handlers"]


def test_plan_resumes_and_continues_the_epoch_count(bundle_copy):
    bundle = read_segmentation_bundle(bundle_copy)
    (bundle_copy / "models").mkdir()
    (bundle_copy / "models" / "checkpoint_epoch=4.pt").write_bytes(b"")
    (bundle_copy / "models" / "model.pt").write_bytes(b"")
    plan = plan_training(bundle, max_epochs=2)
    parser = _merged(plan)
    assert (plan.first_epoch, plan.final_epoch) == (5, 6) and parser["epochs"] == 6
    assert parser["val_interval"] == 6
    assert "dataset_dir" not in plan.overrides and "device" not in plan.overrides
    # resuming from a checkpoint: the served model is not loaded on top of it
    assert all(h.get("_target_") != "CheckpointLoader" for h in parser["train#handlers"])

    fresh = _merged(plan_training(bundle, max_epochs=2, resume=False, val_interval=1))
    assert fresh["epochs"] == 2 and fresh["resume"] is False and fresh["val_interval"] == 1
    loader = fresh["train#handlers"][-1]  # pretrained: the served weights as the starting point
    assert loader["_target_"] == "CheckpointLoader" and loader["load_path"] == str(bundle_copy / "models" / "model.pt")
    no_pretrained = _merged(plan_training(bundle, max_epochs=2, resume=False, pretrained=False))
    assert all(h.get("_target_") != "CheckpointLoader" for h in no_pretrained["train#handlers"])


def test_plan_multi_gpu_uses_the_bundle_config(bundle_copy):
    bundle = read_segmentation_bundle(bundle_copy)
    plan = plan_training(bundle, max_epochs=1, gpus=[0, 2], device="cuda")
    assert plan.multi_gpu and plan.env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert plan.command[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node=2" in plan.command
    assert plan.configs[1] == str(bundle_copy / "configs" / "multi_gpu_train.json")
    assert "device" not in plan.overrides  # the multi-GPU config picks the device from LOCAL_RANK
    (bundle_copy / "configs" / "multi_gpu_train.json").unlink()
    with pytest.raises(FileNotFoundError, match="multi_gpu_train.json"):
        plan_training(read_segmentation_bundle(bundle_copy), max_epochs=1, gpus=[0, 1])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"max_epochs": 1, "device": "cuda;rm"}, ValueError, "device"),
        ({"max_epochs": 1, "val_fraction": 1.0}, ValueError, "val_fraction"),
        ({"max_epochs": 1, "val_interval": 0}, ValueError, "val_interval"),
        ({"max_epochs": 1, "gpus": [0, -1]}, ValueError, "gpus"),
        ({"max_epochs": 1, "dataset_dir": "/nonexistent"}, FileNotFoundError, "dataset.json"),
        ({"max_epochs": 1, "overrides": {"epochs": "$1"}}, ValueError, "max_epochs"),
        ({"max_epochs": 1, "overrides": {"ckpt_dir": "/tmp"}}, ValueError, "ckpt_dir"),
    ],
)
def test_plan_rejects(bundle_copy, kwargs, error, match):
    with pytest.raises(error, match=match):
        plan_training(read_segmentation_bundle(bundle_copy), **kwargs)


def test_plan_needs_a_train_config(tmp_path):
    bundle = read_segmentation_bundle(_bundle(tmp_path, "seg", SEG))
    with pytest.raises(FileNotFoundError, match="train.json"):
        plan_training(bundle, max_epochs=1)


def test_run_training_streams_and_reports_failures(tmp_path):
    lines: list[str] = []
    env = dict(os.environ)
    ok = TrainPlan([sys.executable, "-c", "print('epoch 1'); print('done')"], env, {}, tmp_path / "o.json", 1, 1)
    assert run_training(ok, lines.append) >= 0
    assert lines == ["epoch 1", "done"]
    bad = TrainPlan([sys.executable, "-c", "import sys; print('loss nan'); sys.exit(3)"], env, {}, tmp_path, 1, 1)
    with pytest.raises(TrainingFailed, match=r"status 3:\nloss nan"):
        run_training(bad, lambda line: None)


def _requirements(value: str) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = [line.split("#")[0].strip() for line in value.splitlines()]
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def _targets(config: Any) -> set[str]:
    if isinstance(config, dict):
        found = {config["_target_"]} if isinstance(config.get("_target_"), str) else set()
        return found.union(*(_targets(v) for v in config.values()))
    if isinstance(config, list):
        return set().union(*(_targets(v) for v in config))
    return set()


# components of the bundles' training configs that need a package the core install does not bring (the package
# their code imports: MONAI's TensorBoard handlers use torch.utils.tensorboard, ignite's ProgressBar uses tqdm)
NEEDS_PACKAGE = {
    "TensorBoardStatsHandler": "tensorboard",
    "TensorBoardImageHandler": "tensorboard",
    "torch.utils.tensorboard.SummaryWriter": "tensorboard",
    "ignite.handlers.ProgressBar": "tqdm",
}


def test_label_extra_installs_what_served_bundles_need_to_train():
    from packaging.utils import canonicalize_name

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    core = _requirements(cfg["options"]["install_requires"])
    extras = cfg["options.extras_require"]
    label = _requirements(extras["label"])
    covered = core | label | {canonicalize_name(cfg["metadata"]["name"])}
    # everything a bundle run needs (the `all` extra) is there: the train task runs a bundle run in a child process
    assert _requirements(extras["all"]) <= label
    bundles = [b for b in find_segmentation_bundles().values() if b.train_config is not None]
    assert {b.name for b in bundles} >= {"hyperunet_lits", "nerdunet_wmh"}
    for bundle in bundles:
        declared = {
            canonicalize_name(name)
            for key in ("required_packages_version", "optional_packages_version")
            for name in (bundle.metadata.get(key) or {})
        }
        configs = [bundle.train_config] + ([bundle.multi_gpu_config] if bundle.multi_gpu_config else [])
        targets = set().union(*(_targets(json.loads(c.read_text())) for c in configs))
        used = {package for target, package in NEEDS_PACKAGE.items() if target in targets}
        assert used <= declared, f"{bundle.name}: metadata.json does not declare {used - declared}"
        # the train task runs `python -m monai.bundle run`, whose command line is fire
        needed = declared | used | {"fire"}
        assert needed <= covered, f"{bundle.name} needs {sorted(needed - covered)}, not in the label extra"


def test_init_app_dir(tmp_path):
    from monai_implicit_label.cli import APP_MAIN, init_app_dir, main

    main_py = init_app_dir(tmp_path / "app")
    assert main_py == tmp_path / "app" / "main.py" and main_py.read_text() == APP_MAIN
    # the written main.py loads the app from its folder (MONAI Label puts only the --app folder on sys.path)
    assert repr(str(APP_DIR)) in APP_MAIN and "from monai_implicit_label.main import MonaiImplicitApp" in APP_MAIN
    # the app's own folder is served as it is: nothing written
    before = (APP_DIR / "main.py").read_text()
    assert init_app_dir(APP_DIR) == APP_DIR / "main.py" and init_app_dir(APP_DIR, force=True) == APP_DIR / "main.py"
    assert (APP_DIR / "main.py").read_text() == before
    assert init_app_dir(tmp_path / "app") == main_py  # idempotent
    main_py.write_text("# mine\n")
    with pytest.raises(ValueError, match="--force"):
        init_app_dir(tmp_path / "app")
    assert main_py.read_text() == "# mine\n"
    init_app_dir(tmp_path / "app", force=True)
    assert main_py.read_text() == APP_MAIN
    # MONAI Label writes bin/ lib/ logs/ model/ into the app folder: never the package source
    package = REPO / "monai_implicit"
    for inside in (package / "networks", package, package / "networks" / "new_folder"):
        with pytest.raises(ValueError, match="inside the monai_implicit package"):
            init_app_dir(inside)
    assert not (package / "networks" / "new_folder").exists()
    with pytest.raises(ValueError, match="inside the monai_implicit_label package"):
        init_app_dir(APP_DIR / "monai_implicit_label")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        init_app_dir(tmp_path / "file")
    assert main(["init", str(tmp_path / "other")]) == 0 and (tmp_path / "other" / "main.py").is_file()
    assert main(["init", str(package)]) == 2


def test_server_arguments_default_to_loopback_and_the_guard():
    from monai_implicit_label.cli import server_arguments

    args, env = server_arguments(["--app", "/srv/app", "--studies", "/data", "--conf", "models", "a"], environ={})
    assert args == ["start_server", "--app", str(Path("/srv/app").resolve()), "--host", "127.0.0.1", "--port", "8000",
                    "--uvicorn_app", "monai_implicit_label.server:app", "--studies", "/data", "--conf", "models",
                    "a"]
    assert env["MONAI_IMPLICIT_LABEL_HOSTS"].split(",") == ["127.0.0.1", "localhost", "::1"]
    args, env = server_arguments(["-a", "x", "--host", "0.0.0.0", "-p", "9000"], environ={})
    assert args[3:7] == ["--host", "0.0.0.0", "--port", "9000"] and env == {}  # any host name: no loopback list
    args, env = server_arguments(["-a", "x", "--uvicorn_app", "mine:app"], {"MONAI_IMPLICIT_LABEL_HOSTS": "h"})
    assert args[7:9] == ["--uvicorn_app", "mine:app"] and env == {}  # the user's choices stand
    with pytest.raises(ValueError, match="MONAI_IMPLICIT_LABEL_ORIGINS"):
        server_arguments(["-a", "x"], environ={"MONAI_LABEL_CORS_ORIGINS": '["http://a:1"]'})
    args, _ = server_arguments(["--studies", "/data"], environ={})
    assert args[1:3] == ["--app", str(APP_DIR)]  # without --app: the app folder itself


def test_the_app_is_not_part_of_the_installed_package():
    import importlib.util

    from setuptools import find_packages

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    packages = find_packages(str(REPO), include=include)
    assert "monai_implicit" in packages and "monai_implicit.networks" in packages
    assert all(p == "monai_implicit" or p.startswith("monai_implicit.") for p in packages), packages
    assert importlib.util.find_spec("monai_implicit.apps") is None
    # the package never imports the app (the app imports the package)
    importers = [str(f.relative_to(REPO)) for f in (REPO / "monai_implicit").rglob("*.py")
                 if "monai_implicit_label" in f.read_text() or "monai_implicit.apps" in f.read_text()]
    assert importers == []
