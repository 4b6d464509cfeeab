"""What each dataset is: shapes, class names, file names, official checksums and sources.

Everything here is static, so models can be built from :func:`dataset_info` before any
file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# Official md5s of the distributed files. The ``.gz`` ones are published (LeCun / torchvision,
# Zalando's README); the uncompressed ones were computed by gunzipping those exact originals,
# so a user who unpacked the archives is checked too.
IDX_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_BATCHES = ["test_batch"]
CIFAR10_META = "batches.meta"
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

DEFAULT_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
}


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset (no file is read).

    Attributes:
        name: canonical name accepted by :func:`neuroaikit.data.load_dataset`.
        channels, image_size: image shape is ``(channels, image_size, image_size)``.
        classes: class names, index = label.
        train_size, test_size: number of images in the full official splits.
        folders: sub-folder names searched below a parent ``data_dir``.
        source: where the files come from.
    """

    name: str
    channels: int
    image_size: int
    classes: list[str]
    train_size: int
    test_size: int
    folders: tuple[str, ...] = ()
    source: str = ""
    needs_files: bool = True
    aliases: tuple[str, ...] = field(default=(), repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)


_INFOS = {
    "digits": DatasetInfo(
        "digits", 1, 8, MNIST_CLASSES, 1438, 359,
        source="scikit-learn's bundled UCI optical digits (1,797 images, 8x8, values 0..16), embedded",
        needs_files=False,
    ),
    "mnist": DatasetInfo(
        "mnist", 1, 28, MNIST_CLASSES, 60000, 10000,
        folders=("mnist", "MNIST/raw", "MNIST"),
        source="LeCun, Cortes & Burges; idx files (.gz or uncompressed)",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 1, 28, FASHION_MNIST_CLASSES, 60000, 10000,
        folders=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        source="Zalando Research (Xiao et al. 2017); idx files (.gz or uncompressed)",
        aliases=("fashion_mnist", "fashionmnist"),
    ),
    "cifar10": DatasetInfo(
        "cifar10", 3, 32, CIFAR10_CLASSES, 50000, 10000,
        folders=(CIFAR10_FOLDER, "cifar10", "cifar-10", "cifar10-subset", "cifar10*", "cifar-10*"),
        source="Krizhevsky 2009; official python pickle batches or an .npz with x_train/y_train/x_test/y_test",
        aliases=("cifar-10", "cifar_10"),
    ),
}

DATASETS: tuple[str, ...] = tuple(_INFOS)


def canonical_name(name: str) -> str:
    """The canonical dataset name for ``name`` (case-insensitive, common aliases accepted)."""
    key = str(name).strip().lower()
    for info in _INFOS.values():
        if key == info.name or key in info.aliases:
            return info.name
    raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")


def dataset_info(name: str) -> DatasetInfo:
    """Shapes and class names of dataset ``name`` without reading any file."""
    return _INFOS[canonical_name(name)]
