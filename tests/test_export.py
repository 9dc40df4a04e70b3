"""Export, reload and call both signatures on real image files.

The format (folders, signatures, warm-up records, the README's REST request, the gRPC example) is
checked on a tiny two-head model (fast); that serving gives the Keras model's answers, the graph's
ops and `saved_model_cli` on a small trained Inception-v3 (slow).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import base64
import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2  # the SavedModel proto; not under tf.*
from tensorflow_serving.apis import prediction_log_pb2

from inception_keras import build_inception_v3, inference_model
from inception_keras.data.preprocessing import preprocess_for_eval
from inception_keras.export import WARMUP_DIR, WARMUP_FILE, export_saved_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = 75
CLASS_NAMES = ("red", "green", "blue", "yellow")
COLOURS = np.array([[220, 30, 30], [30, 200, 40], [40, 60, 220], [230, 230, 40]], np.float32)
TOP_K = 3


def colour_pixels(rng, label, height, width):
    noise = rng.normal(0, 25, (height, width, 3))
    return np.clip(COLOURS[label] + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained_model():
    """Tiny two-output Inception-v3 after a few eager training steps on coloured images."""
    keras.utils.set_random_seed(0)
    model = build_inception_v3(
        input_shape=(SIZE, SIZE, 3), classes=len(CLASS_NAMES), depth_multiplier=0.1,
        batch_norm_momentum=0.5,
    )
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASS_NAMES), 48)
    images = np.stack([colour_pixels(rng, label, SIZE, SIZE) for label in labels]) / 127.5 - 1
    loss = "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(3e-3), loss={"predictions": loss, "aux_predictions": loss},
                  run_eagerly=True)  # tracing the train step costs more than these few steps
    model.fit(images, {"predictions": labels, "aux_predictions": labels}, batch_size=16, verbose=0)
    return model


def export_colours(model, tmp_path_factory):
    export_dir = tmp_path_factory.mktemp("saved_models")
    return export_saved_model(
        model, export_dir, model_name="colours", class_names=CLASS_NAMES, top_k=TOP_K
    )


@pytest.fixture(scope="module")
def export_path(trained_model, tmp_path_factory):
    return export_colours(trained_model, tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(export_path):
    return tf.saved_model.load(export_path)


@pytest.fixture(scope="module")
def tiny_model(tiny_two_head_model):
    return tiny_two_head_model(classes=len(CLASS_NAMES), size=SIZE)


@pytest.fixture(scope="module")
def tiny_export_path(tiny_model, tmp_path_factory):
    return export_colours(tiny_model, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_loaded(tiny_export_path):
    return tf.saved_model.load(tiny_export_path)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Encoded images the test writes to disk and reads back: name -> bytes."""
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("images")
    colour = colour_pixels(rng, 0, 97, 131)
    encoded = {
        "colour.jpg": tf.io.encode_jpeg(colour).numpy(),
        "small.jpg": tf.io.encode_jpeg(colour_pixels(rng, 2, 40, 30)).numpy(),
        "grey.jpg": tf.io.encode_jpeg(tf.image.rgb_to_grayscale(colour_pixels(rng, 1, 90, 80))).numpy(),
        "yellow.png": tf.io.encode_png(colour_pixels(rng, 3, 64, 100)).numpy(),
    }
    cmyk = _cmyk_jpeg(colour_pixels(rng, 3, 80, 80))
    if cmyk is not None:
        encoded["cmyk.jpg"] = cmyk
    for name, data in encoded.items():
        (folder / name).write_bytes(data)
    return {name: (folder / name).read_bytes() for name in encoded}


def _cmyk_jpeg(pixels):
    try:
        from PIL import Image
    except ImportError:
        return None
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def keras_probabilities(model, encoded_images):
    """The in-memory Keras model on the same eval preprocessing of the same bytes."""
    batch = tf.stack([preprocess_for_eval(image, SIZE) for image in encoded_images])
    return inference_model(model)(batch, training=False).numpy()


def test_version_folder_holds_a_complete_saved_model(tiny_export_path):
    export_path = tiny_export_path
    base = os.path.dirname(export_path)
    assert os.path.basename(export_path) == "1"
    assert os.path.basename(base) == "colours"
    assert os.listdir(base) == ["1"]  # nothing else TF Serving could trip on
    for name in ("saved_model.pb", "variables", os.path.join(WARMUP_DIR, WARMUP_FILE)):
        assert os.path.exists(os.path.join(export_path, name)), name


@pytest.mark.parametrize("which", ["tiny", pytest.param("inception", marks=pytest.mark.slow)])
def test_checkpoint_holds_each_inference_weight_once(request, which):
    """The aux head is dropped and no weight is stored twice."""
    model, export_path = exported(request, which)
    reader = tf.train.load_checkpoint(os.path.join(export_path, "variables", "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(int(np.prod(shape)) for key, shape in shapes.items() if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert stored == inference_model(model).count_params() < model.count_params()


def exported(request, which):
    """(model, export path) of the tiny model or of the trained Inception-v3."""
    if which == "tiny":
        return request.getfixturevalue("tiny_model"), request.getfixturevalue("tiny_export_path")
    return request.getfixturevalue("trained_model"), request.getfixturevalue("export_path")


def test_signatures_have_named_float32_and_string_tensors(tiny_loaded):
    loaded = tiny_loaded
    serving = loaded.signatures["serving_default"]
    assert serving.structured_input_signature[1] == {
        "image_bytes": tf.TensorSpec([None], tf.string, name="image_bytes")
    }
    outputs = serving.structured_outputs
    assert set(outputs) == {"classes", "class_names", "probabilities"}
    assert outputs["classes"].dtype == tf.int64 and outputs["class_names"].dtype == tf.string
    assert outputs["probabilities"].dtype == tf.float32
    assert all(spec.shape.as_list() == [None, TOP_K] for spec in outputs.values())
    pixels = loaded.signatures["predict_images"]
    assert pixels.structured_input_signature[1] == {
        "images": tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")
    }
    assert pixels.structured_outputs["probabilities"].shape.as_list() == [None, len(CLASS_NAMES)]


@pytest.mark.slow  # the trained Inception-v3
def test_serving_default_gives_the_keras_top1_on_image_files(loaded, trained_model, image_files):
    encoded = list(image_files.values())
    result = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    expected = keras_probabilities(trained_model, encoded)
    classes = result["classes"].numpy()
    np.testing.assert_array_equal(classes[:, 0], expected.argmax(axis=1))
    top = np.take_along_axis(expected, classes, axis=1)
    np.testing.assert_allclose(result["probabilities"].numpy(), top, atol=1e-5)
    assert np.all(np.diff(result["probabilities"].numpy(), axis=1) <= 0)
    names = [[name.decode() for name in row] for row in result["class_names"].numpy()]
    assert names == [[CLASS_NAMES[i] for i in row] for row in classes]


@pytest.mark.slow  # the trained Inception-v3
def test_predict_images_gives_keras_probabilities_on_pixels(loaded, trained_model, image_files):
    pixels = tf.stack([
        tf.image.resize(tf.io.decode_image(image_files[name], channels=3), [SIZE, SIZE])
        for name in ("colour.jpg", "yellow.png")
    ])
    result = loaded.signatures["predict_images"](images=pixels)["probabilities"].numpy()
    expected = inference_model(trained_model)(pixels / 127.5 - 1, training=False).numpy()
    np.testing.assert_allclose(result, expected, atol=1e-5)
    np.testing.assert_allclose(result.sum(axis=1), 1.0, atol=1e-5)


def test_non_image_bytes_raise_invalid_argument_and_the_model_keeps_serving(tiny_loaded, image_files):
    serve = tiny_loaded.signatures["serving_default"]
    for batch in ([b"not an image"], [image_files["colour.jpg"], b""]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="image"):
            serve(image_bytes=tf.constant(batch))
    assert serve(image_bytes=tf.constant([image_files["colour.jpg"]]))["classes"].shape == (1, TOP_K)


@pytest.mark.parametrize("which", ["tiny", pytest.param("inception", marks=pytest.mark.slow)])
def test_graph_uses_only_stock_tensorflow_ops(request, which):
    _, export_path = exported(request, which)
    saved_model = saved_model_pb2.SavedModel.FromString(
        pathlib.Path(export_path, "saved_model.pb").read_bytes()
    )
    graph = saved_model.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    ops |= {node.op for function in graph.library.function for node in function.node_def}
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    # tf.raw_ops has a function for every op built into TensorFlow (not for custom ops).
    assert [op for op in sorted(ops) if not hasattr(tf.raw_ops, op)] == []
    assert "DecodeAndCropJpeg" in ops and "TopKV2" in ops  # preprocessing and top-k in the graph


def read_warmup_logs(export_path):
    path = os.path.join(export_path, WARMUP_DIR, WARMUP_FILE)
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]


def test_warmup_records_are_predict_logs_the_signatures_accept(tiny_export_path, tiny_loaded):
    export_path, loaded = tiny_export_path, tiny_loaded
    logs = read_warmup_logs(export_path)
    assert 1 <= len(logs) <= 1000
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(loaded.signatures)
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "colours"
        signature = loaded.signatures[request.model_spec.signature_name]
        specs = signature.structured_input_signature[1]
        inputs = {key: tf.make_ndarray(tensor) for key, tensor in request.inputs.items()}
        assert set(inputs) == set(specs)
        for key, value in inputs.items():
            assert tf.dtypes.as_dtype(request.inputs[key].dtype) == specs[key].dtype
            assert specs[key].shape.is_compatible_with(value.shape)
        outputs = signature(**{key: tf.constant(value) for key, value in inputs.items()})
        assert outputs["probabilities"].shape[0] == len(next(iter(inputs.values())))


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_saved_model_cli_run_on_serving_default(export_path, loaded, image_files, tmp_path):
    batch = np.array([image_files["colour.jpg"], image_files["yellow.png"]], dtype=object)
    np.save(tmp_path / "batch.npy", batch)
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    result = subprocess.run(
        [str(cli), "run", "--dir", export_path, "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs", f"image_bytes={tmp_path / 'batch.npy'}"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = loaded.signatures["serving_default"](image_bytes=tf.constant(batch))
    assert "Result for output key class_names" in result.stdout
    for row in expected["class_names"].numpy():
        assert str(row[0]) in result.stdout  # e.g. b'red'


def serving_doc():
    """The "Serving" section of README.md."""
    section = (ROOT / "README.md").read_text().split("\n## Serving", 1)[1]
    return section.split("\n## ", 1)[0]


def rest_row_format_inputs(request, signature):
    """TF Serving's REST row format: with one named input each instance is its value, and
    `{"b64": ...}` is base64 of a binary string."""
    specs = signature.structured_input_signature[1]
    assert len(specs) == 1
    (name, spec), = specs.items()

    def value(instance):
        if isinstance(instance, dict) and set(instance) == {name}:
            instance = instance[name]
        if isinstance(instance, dict) and set(instance) == {"b64"}:
            return base64.b64decode(instance["b64"], validate=True)
        return instance

    return {name: tf.constant([value(row) for row in request["instances"]], dtype=spec.dtype)}


def test_readme_rest_request_decodes_into_the_signature_input(tiny_loaded, image_files):
    loaded = tiny_loaded
    doc = serving_doc()
    template = re.search(r"""printf '(\{"instances".*?\})'""", doc).group(1)
    assert re.search(r"curl .*-d @request\.json .*/v1/models/inception_v3:predict", doc)
    encoded = image_files["colour.jpg"]
    request = json.loads(template.replace("%s", base64.b64encode(encoded).decode()))
    serve = loaded.signatures["serving_default"]
    inputs = rest_row_format_inputs(request, serve)
    assert inputs["image_bytes"].numpy().tolist() == [encoded]
    np.testing.assert_array_equal(
        serve(**inputs)["classes"], serve(image_bytes=tf.constant([encoded]))["classes"]
    )


def load_grpc_example():
    spec = importlib.util.spec_from_file_location("grpc_client", ROOT / "examples" / "grpc_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    return client


def test_grpc_example_builds_a_predict_request_the_signature_accepts(tiny_loaded, image_files):
    loaded = tiny_loaded
    client = load_grpc_example()
    encoded = [image_files["colour.jpg"], image_files["grey.jpg"]]
    request = client.build_request(encoded, model_name="colours")
    assert request.model_spec.name == "colours"
    assert request.model_spec.signature_name == "serving_default"
    serve = loaded.signatures[request.model_spec.signature_name]
    assert set(request.inputs) == set(serve.structured_input_signature[1])
    inputs = {key: tf.make_ndarray(tensor) for key, tensor in request.inputs.items()}
    np.testing.assert_array_equal(
        serve(**inputs)["classes"], serve(image_bytes=tf.constant(encoded))["classes"]
    )


def test_grpc_example_talks_to_a_prediction_service(tiny_loaded, image_files, tmp_path, capsys):
    """End to end over a real gRPC channel, to a PredictionService backed by the SavedModel."""
    loaded = tiny_loaded
    client = load_grpc_example()
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class SavedModelPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = loaded.signatures[request.model_spec.signature_name]
            inputs = {key: tf.make_ndarray(tensor) for key, tensor in request.inputs.items()}
            response = predict_pb2.PredictResponse(model_spec=request.model_spec)
            for key, value in signature(**inputs).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        SavedModelPredictionService(), server
    )
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        (tmp_path / "photo.png").write_bytes(image_files["yellow.png"])
        code = client.main([str(tmp_path / "photo.png"), "--server", f"localhost:{port}",
                            "--model_name", "colours"])
    finally:
        server.stop(grace=None)
    assert code == 0
    expected = loaded.signatures["serving_default"](image_bytes=tf.constant([image_files["yellow.png"]]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("photo.png") and len(lines) == 1 + TOP_K
    names = [line.split()[-1] for line in lines[1:]]
    assert names == [name.decode() for name in expected["class_names"].numpy()[0]]
