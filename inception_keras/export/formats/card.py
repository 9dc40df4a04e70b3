"""`card.json` and `labels.txt` beside the files, and the agreement table printed at export.

The card says what each file takes and returns, where its weights come from, and how closely
it reproduces the Keras model (`agreement.py`), so a deployment can be judged without rerunning
anything. See README "Deploy" for an example.
"""

import datetime
import json
import os

from inception_keras.data.preprocessing import EVAL_CENTRAL_FRACTION
from inception_keras.export.formats.deploy_model import INPUT_NAME, OUTPUT_NAME

CARD_FILE = "card.json"
LABELS_FILE = "labels.txt"
CARD_VERSION = 1


def input_description(image_size):
    """What every file takes (the SavedModel takes encoded bytes and preprocesses itself)."""
    return {
        "name": INPUT_NAME,
        "shape": [None, image_size, image_size, 3],
        "dtype": "float32",
        "layout": "NHWC, RGB",
        "value_range": [-1.0, 1.0],
        "preprocessing": (
            f"decode to RGB; central crop keeping {EVAL_CENTRAL_FRACTION:.1%} of the height and "
            f"of the width; bilinear resize to {image_size}x{image_size}; pixel p in 0..255 -> "
            "p / 127.5 - 1 (inception_keras.data.preprocessing.preprocess_for_eval)"
        ),
        "saved_model": (
            "the SavedModel's serving_default takes encoded image bytes (JPEG, PNG, GIF, BMP) "
            "and applies this preprocessing itself; these files take its result"
        ),
    }


def build_card(*, model_name, version, image_size, class_names, source, data, files, agreements,
               packages, onnx_opset=None):
    """The card as a dict. `files`: {file name: facts}, `agreements`: {file name: Agreement}."""
    first = next(iter(agreements.values()))
    card = {
        "card_version": CARD_VERSION,
        "model_name": model_name,
        "version": version,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": dict(source or {}),
        "input": input_description(image_size),
        "output": {"name": OUTPUT_NAME, "shape": [None, len(class_names)], "dtype": "float32",
                   "meaning": "class probabilities (softmax), in the order of labels.txt"},
        "num_classes": len(class_names),
        "labels_file": LABELS_FILE,
        "packages": packages,
        "agreement_data": {**data, "images": first.images,
                           "keras_top1_accuracy": first.keras_top1_accuracy,
                           "reference": "the Keras model the SavedModel is exported from, "
                                        "run in float32"},
        "files": {name: {**facts, "agreement": agreements[name].to_dict()}
                  for name, facts in files.items()},
    }
    if onnx_opset is not None:
        card["onnx_opset"] = onnx_opset
    return card


def write_card(folder, card, class_names):
    with open(os.path.join(folder, LABELS_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    with open(os.path.join(folder, CARD_FILE), "w", encoding="utf-8") as f:
        f.write(json.dumps(card, indent=2) + "\n")


def read_card(folder):
    with open(os.path.join(folder, CARD_FILE), encoding="utf-8") as f:
        return json.load(f)


def agreement_table(card):
    """The card's agreement, as lines of a small table."""
    data = card["agreement_data"]
    lines = [
        f"agreement with the Keras model on {data['images']} images "
        f"({data.get('dataset', 'given data')}, {data.get('agreement_split', 'agreement')} split); "
        f"Keras top-1 accuracy {data['keras_top1_accuracy']:.4f}",
        f"{'file':22s} {'format':15s} {'size':>9s} {'top-1 agree':>11s} {'(min)':>7s} "
        f"{'top-1 acc':>9s} {'max |dp|':>9s}",
    ]
    for name, facts in card["files"].items():
        agreement = facts["agreement"]
        lines.append(
            f"{name:22s} {facts['format']:15s} {facts['bytes'] / 1e6:7.2f}MB "
            f"{agreement['top1_agreement']:11.4f} {facts['min_top1_agreement']:7.3f} "
            f"{agreement['top1_accuracy']:9.4f} {agreement['max_abs_probability_difference']:9.1e}"
        )
    return lines
