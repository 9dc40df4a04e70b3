"""An ensemble evaluation: several runs' class probabilities averaged, then scored.

`--eval_only --model_dir A --model_dir B ...`: each member is restored from its own config.json
(its network and recipe) and newest checkpoint (its EMA weights if it has them), and gives the
softmax of its main head for every validation image once, averaged over the image's crops;
the ensemble's probabilities are the mean of the members' (first over crops, then over members:
for a plain mean with the same crops per member this equals one mean over all of them). The
paper's Table 5: 4 Inception-v3 models x 144 crops, 17.2% top-1 / 3.58% top-5 error.

Members must score the same images with the same classes: one dataset, class names,
eval_crops, eval_exclude and eval_steps; the labels each member reads are compared image by
image (TrainerError).
"""

import numpy as np

from inception_keras.training.errors import TrainerError

AGREED_KEYS = ("dataset", "eval_crops", "eval_exclude", "eval_steps")


def check_members_agree(configs, class_names):
    """TrainerError (one line) unless every member evaluates the same images and classes."""
    first = configs[0]
    for config, names in zip(configs[1:], class_names[1:]):
        for key in AGREED_KEYS:
            if getattr(config, key) != getattr(first, key):
                raise TrainerError(
                    f"ensemble: {config.model_dir} has {key} {getattr(config, key)!r}, "
                    f"{first.model_dir} {getattr(first, key)!r}: members must score the same "
                    f"images (set it for all with --set {key}=...)")
        if tuple(names) != tuple(class_names[0]):
            raise TrainerError(f"ensemble: {config.model_dir} and {first.model_dir} have "
                               "different classes: members must share one label set")


def check_same_labels(labels, reference, model_dir):
    if labels.shape != reference.shape or not np.array_equal(labels, reference):
        raise TrainerError(f"ensemble: {model_dir} read other images or labels than the first "
                           "member (a different data_dir?): members must score the same images")


def score(probabilities, labels, num_classes):
    """The evaluation results of probabilities [N, C] for class ids [N], as
    `Steps.evaluate` gives them: top1, top5 (top-min(5, C)), the plain cross-entropy,
    examples and the [true, predicted] confusion counts."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels, np.int64)
    top_k = min(5, num_classes)
    likelihood = probabilities[np.arange(len(labels)), labels]
    # in the top k: fewer than k classes are more probable than the true one
    rank = np.sum(probabilities > likelihood[:, None], axis=1)
    confusion = np.zeros([num_classes, num_classes], np.float32)
    np.add.at(confusion, (labels, np.argmax(probabilities, axis=1)), 1.0)
    examples = len(labels)
    return {"top1": float(np.mean(rank < 1)) if examples else 0.0,
            "top5": float(np.mean(rank < top_k)) if examples else 0.0,
            "cross_entropy": float(np.mean(-np.log(np.maximum(likelihood, 1e-12))))
            if examples else 0.0,
            "examples": examples, "confusion": confusion}


def member_record(config, step, checkpoint, weights):
    return {"model_dir": config.model_dir, "step": step, "checkpoint": checkpoint,
            "config": config.name, "weights": weights}
