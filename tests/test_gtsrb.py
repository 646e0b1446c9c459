"""GTSRB: shapes, metadata, the track hold-out, and the originals read at another size."""
import pytest
import torch

from stn_course import gtsrb
from stn_course.gtsrb import GTSRB_CLASSES, GTSRB_META_COLUMNS, load_gtsrb, split_tracks
from stn_course.utils import data_root

#: the 32x32 copy of GTSRB under the data root
requires_gtsrb32 = pytest.mark.skipif(not (data_root() / "GTSRB" / "gtsrb32.npz").exists(),
                                      reason="GTSRB (gtsrb32.npz) is not under the data root")


@pytest.fixture(scope="module")
def train_set():
    return load_gtsrb(train=True)


@requires_gtsrb32
def test_shapes_labels_and_metadata(train_set):
    data = train_set.data
    assert data.images.shape == (39209, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.shape == (39209,) and set(data.labels.unique().tolist()) == set(range(43))
    assert len(data.classes) == len(GTSRB_CLASSES) == 43
    assert train_set.meta.shape == (39209, len(GTSRB_META_COLUMNS))
    # the sign's box lies inside the original photograph
    width, height = train_set.column("width"), train_set.column("height")
    assert (train_set.column("roi_x2") < width).all() and (train_set.column("roi_y2") < height).all()
    assert (train_set.column("roi_x1") < train_set.column("roi_x2")).all()


@requires_gtsrb32
def test_test_set_has_no_tracks():
    test = load_gtsrb(train=False, limit=300)
    assert len(test.data) == 300 and (test.column("track") == -1).all()


@requires_gtsrb32
def test_track_hold_out_puts_no_track_on_both_sides(train_set):
    train, validation = split_tracks(train_set, fraction=0.1, seed=0)
    assert len(train.data) + len(validation.data) == len(train_set.data)
    assert not set(train.track_keys.tolist()) & set(validation.track_keys.tolist())
    # every class keeps tracks on both sides, and about a tenth of the images are held out
    assert set(validation.data.labels.tolist()) == set(range(43)) == set(train.data.labels.tolist())
    assert 0.07 < len(validation.data) / len(train_set.data) < 0.13


@requires_gtsrb32
def test_track_keys_separate_classes_sharing_a_track_number(train_set):
    # track numbers restart in every class: class 0 and class 1 both have a track 0
    first = train_set.column("track") == 0
    assert len(train_set.data.labels[first].unique()) > 1
    assert len(train_set.track_keys.unique()) > len(train_set.column("track").unique())


def _no_network(*args, **kwargs):
    from urllib.error import URLError

    raise URLError("no network (simulated)")


def test_gtsrb48_without_originals_or_network_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets

    from stn_course.errors import CourseError

    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torchvision.datasets, "GTSRB", _no_network)  # offline, even where a network is
    with pytest.raises(CourseError) as raised:
        load_gtsrb(train=True, root=tmp_path, size=48)
    message = str(raised.value)
    assert "GTSRB at 48x48 was not found" in message
    assert str(tmp_path / "gtsrb" / "GTSRB" / "Training") in message  # the folder searched
    assert "download=True" in message and "internet access" in message  # what to do
    assert str(tmp_path / "GTSRB" / "gtsrb32.npz") in message and "`gtsrb`" in message  # the offline alternative


def _write_fake_originals(folder, sizes):
    """torchvision's GTSRB training layout: Training/<class>/<track>_<frame>.ppm and GT-<class>.csv."""
    from PIL import Image

    for label in (0, 1):
        images = folder / "gtsrb" / "GTSRB" / "Training" / f"{label:05d}"
        images.mkdir(parents=True)
        rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
        for index, (width, height) in enumerate(sizes):
            name = f"{index // 2:05d}_{index % 2:05d}.ppm"
            Image.new("RGB", (width, height), (200, 10 * label, 30)).save(images / name)
            rows.append(f"{name};{width};{height};1;2;{width - 2};{height - 3};{label}")
        (images / f"GT-{label:05d}.csv").write_text("\n".join(rows) + "\n")


def test_originals_are_resized_to_48_with_tracks_and_boxes_from_the_csv_files(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torchvision.datasets, "GTSRB", lambda *args, **kwargs: None)  # "already downloaded"
    sizes = [(30, 31), (64, 60), (120, 118), (25, 25)]
    _write_fake_originals(tmp_path, sizes)
    data = load_gtsrb(train=True, root=tmp_path, size=48)
    assert data.data.images.shape == (8, 3, 48, 48) and data.data.images.dtype == torch.uint8
    assert data.data.labels.tolist() == [0] * 4 + [1] * 4
    assert data.column("track").tolist() == [0, 0, 1, 1] * 2
    assert data.column("width").tolist() == [w for w, _ in sizes] * 2
    assert data.column("roi_y2").tolist() == [h - 3 for _, h in sizes] * 2
    assert data.data.images[4:, 1].float().mean().item() == pytest.approx(10, abs=1)  # class 1's green
    # the second load comes from the cache, not the files
    monkeypatch.setattr(gtsrb, "_decode_resized", lambda *args: pytest.fail("decoded again"))
    assert torch.equal(load_gtsrb(train=True, root=tmp_path, size=48).data.images, data.data.images)
    # unless a file changed: then the cache is of other data
    next((tmp_path / "gtsrb").rglob("*.ppm")).unlink()
    with pytest.raises(pytest.fail.Exception, match="decoded again"):
        load_gtsrb(train=True, root=tmp_path, size=48)


def _write_npz(path, **changes):
    import numpy as np

    arrays = {}
    for split in ("train", "test"):
        arrays.update({f"{split}_images": np.zeros((5, 32, 32, 3), np.uint8),
                       f"{split}_labels": np.arange(5, dtype=np.int64) * 10,
                       f"{split}_meta": np.zeros((5, 7), np.int64)})
    arrays.update(changes)
    arrays = {name: value for name, value in arrays.items() if value is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, words", [
    ("truncated", "cannot be read .*truncated or not an npz archive"),
    ("not a zip", "cannot be read .*truncated or not an npz archive"),
    ("no test_meta", "lacks the array.s. test_meta"),
    ("float images", r"test_images is float32 \(5, 32, 32, 3\), not uint8"),
    ("label 43", "holds labels from 0 to 43, outside 0-42"),
    ("label -1", "holds labels from -1 to 40, outside 0-42"),
])
def test_a_bad_gtsrb_npz_is_one_error_naming_it(tmp_path, damage, words):
    import numpy as np

    from stn_course.data import DatasetCorruptError
    from stn_course.errors import CourseError

    path = tmp_path / "GTSRB" / "gtsrb32.npz"
    labels = np.arange(5, dtype=np.int64) * 10
    _write_npz(path, **{"no test_meta": {"test_meta": None},
                        "float images": {"test_images": np.zeros((5, 32, 32, 3), np.float32)},
                        "label 43": {"test_labels": np.where(labels == 40, 43, labels)},
                        "label -1": {"test_labels": np.where(labels == 0, -1, labels)}}.get(damage, {}))
    if damage in ("truncated", "not a zip"):
        assert len(load_gtsrb(train=False, root=tmp_path).data.labels) == 5  # intact before the damage
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "not a zip":
        path.write_text("hello")
    with pytest.raises(DatasetCorruptError, match=f"The GTSRB file {path} .*{words}.*delete it") as caught:
        load_gtsrb(train=False, root=tmp_path)
    assert isinstance(caught.value, CourseError)
