"""Losses and metrics of the two-headed Inception-v3: main + aux_weight x auxiliary.

Both heads output softmax probabilities (float32 even under mixed precision), so the losses use
`from_logits=False`. Labels are one-hot; the same labels feed both heads.
"""

import keras

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS


def make_losses(*, include_aux, label_smoothing, aux_weight):
    """(loss, loss_weights) for `model.compile`: label-smoothed categorical cross-entropy."""
    def cross_entropy(name):
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, name=name)

    if not include_aux:
        return cross_entropy("loss"), None
    losses = {PREDICTIONS: cross_entropy("main_loss"), AUX_PREDICTIONS: cross_entropy("aux_loss")}
    return losses, {PREDICTIONS: 1.0, AUX_PREDICTIONS: aux_weight}


def make_metrics(*, include_aux, num_classes):
    """Top-1 and top-5 accuracy on the main head only (top-k with k = min(5, classes))."""
    metrics = [
        keras.metrics.CategoricalAccuracy(name="top1"),
        keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
    ]
    return {PREDICTIONS: metrics} if include_aux else metrics


def targets_for(include_aux):
    """A `dataset.map` function turning (images, one_hot) into the model's (inputs, targets)."""
    def to_targets(images, labels):
        if include_aux:
            return images, {PREDICTIONS: labels, AUX_PREDICTIONS: labels}
        return images, labels

    return to_targets


def metric_value(logs, name):
    """logs['predictions_top1'] or logs['top1'] (single-head models), else None."""
    for key in (f"{PREDICTIONS}_{name}", name, f"val_{PREDICTIONS}_{name}"):
        if key in logs:
            return float(logs[key])
    return None

