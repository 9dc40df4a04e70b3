"""The names a training config chooses from, defined once for `configs/` and the library.

No TensorFlow here (nor anywhere `import inception_keras.choices` reaches), so `configs/` can
validate a recipe without importing it.
"""

# `inception_keras.training.distribute.make_strategy` builds each of these.
STRATEGIES = ("tpu", "mirrored", "multi_worker", "one_device", "cpu")

# `inception_keras.training.step.schedules` ramps the learning rate up in each of these ways.
WARMUPS = ("none", "linear", "tpu_reference")

# `inception_keras.data.preprocessing` distorts training colours in each of these ways.
COLOR_DISTORTIONS = ("none", "slim_fast", "tpu_fast")

# `inception_keras.data.augment` augments training images with each of these policies.
AUGMENT_POLICIES = ("none", "randaugment", "augmix")

# `inception_keras.export.formats` writes each of these (`export_formats`, `--formats`).
EXPORT_FORMATS = ("savedmodel", "litert", "litert_float16", "litert_int8", "onnx")

# `inception_keras.models.canonical.stem` builds each of these stems (the paper's Table 3) ...
STEMS = ("factorized", "7x7")
# ... and each of these networks of the paper's Table 2 (the input side each is built for).
RECEPTIVE_FIELDS = (299, 151, 79)
