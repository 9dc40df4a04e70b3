"""tf.data input pipelines: ImageNet TFRecords, TFDS, image folders, synthetic and smoke data.

`make_input_fn(...)` builds the input for `strategy.distribute_datasets_from_function`;
`dataset_info(...)` describes a dataset; both go through one registry of dataset sources
(`sources.py`), and one `ExampleOptions` says what the examples look like. Labels are int32
class ids (float32 soft targets when training mixes batches); training augmentation
(`augment.py`, `mixing.py`) runs in the pipeline. The pipelines drop corrupt records;
`corrupt_records_seen()` is the running total, for the caller to report.
"""

from inception_keras.data.augment import AUGMENT_POLICIES
from inception_keras.data.corrupt import corrupt_records_seen
from inception_keras.data.errors import DataError
from inception_keras.data.examples import ExampleOptions
from inception_keras.data.exclusion import read_exclusions
from inception_keras.data.folder import folder_dataset
from inception_keras.data.pipeline import make_input_fn
from inception_keras.data.preprocessing import preprocess_for_eval, preprocess_for_train
from inception_keras.data.smoke import ensure_smoke_dataset
from inception_keras.data.smoke_images import SMOKE_CLASS_NAMES
from inception_keras.data.sources import DatasetInfo, dataset_info, excluded_count
from inception_keras.data.synthetic import synthetic_dataset
from inception_keras.data.tfds_source import tfds_dataset
from inception_keras.data.tfrecord import serialize_example, tfrecord_dataset

__all__ = [
    "read_exclusions",
    "excluded_count",
    "AUGMENT_POLICIES",
    "DataError",
    "DatasetInfo",
    "ExampleOptions",
    "SMOKE_CLASS_NAMES",
    "corrupt_records_seen",
    "dataset_info",
    "ensure_smoke_dataset",
    "folder_dataset",
    "make_input_fn",
    "preprocess_for_eval",
    "preprocess_for_train",
    "serialize_example",
    "synthetic_dataset",
    "tfds_dataset",
    "tfrecord_dataset",
]
