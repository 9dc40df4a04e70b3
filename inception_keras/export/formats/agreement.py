"""How closely each exported file reproduces the Keras model, measured on labelled images.

For every file: top-1 agreement (the share of images where the file's top class is the Keras
model's), the top-1 accuracy of the file and of the Keras model against the labels, and the
largest absolute difference of any class probability, over the same images.
"""

import dataclasses

import numpy as np

from inception_keras.export.errors import ExportError


@dataclasses.dataclass(frozen=True)
class Agreement:
    """One file's measured agreement with the Keras model (see the module doc)."""

    images: int
    top1_agreement: float
    top1_accuracy: float
    keras_top1_accuracy: float
    max_abs_probability_difference: float

    def to_dict(self):
        return dataclasses.asdict(self)


class _Tally:
    def __init__(self):
        self.images = self.agreeing = self.correct = self.keras_correct = 0
        self.max_difference = 0.0

    def add(self, keras_probabilities, file_probabilities, labels):
        keras_top1, file_top1 = keras_probabilities.argmax(-1), file_probabilities.argmax(-1)
        self.images += len(labels)
        self.agreeing += int((keras_top1 == file_top1).sum())
        self.correct += int((file_top1 == labels).sum())
        self.keras_correct += int((keras_top1 == labels).sum())
        difference = np.abs(keras_probabilities.astype(np.float64) - file_probabilities).max()
        self.max_difference = max(self.max_difference, float(difference))

    def result(self):
        return Agreement(
            images=self.images,
            top1_agreement=self.agreeing / self.images,
            top1_accuracy=self.correct / self.images,
            keras_top1_accuracy=self.keras_correct / self.images,
            max_abs_probability_difference=self.max_difference,
        )


def measure_agreement(keras_probabilities, runners, batches):
    """{name: Agreement} of each runner against `keras_probabilities` over `batches`.

    keras_probabilities: float32 images -> probabilities of the Keras model.
    runners: {name: callable of the same kind}, e.g. `LiteRTRunner`s and `OnnxRunner`s.
    batches: iterable of (float32 images, int class ids), read once.
    """
    tallies = {name: _Tally() for name in runners}
    for images, labels in batches:
        reference = np.asarray(keras_probabilities(images), np.float32)
        for name, runner in runners.items():
            tallies[name].add(reference, np.asarray(runner(images), np.float32), labels)
    if any(tally.images == 0 for tally in tallies.values()):
        raise ExportError("the agreement data holds no images; the files cannot be checked.")
    return {name: tally.result() for name, tally in tallies.items()}


def below_bound(agreements, bounds):
    """[(name, agreement, bound)] of the files whose top-1 agreement is under their bound."""
    return [(name, agreement.top1_agreement, bounds[name])
            for name, agreement in agreements.items()
            if agreement.top1_agreement < bounds[name]]
