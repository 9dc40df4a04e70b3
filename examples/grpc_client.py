"""Classify image files with an Inception-v3 served by TensorFlow Serving, over gRPC.

    python examples/grpc_client.py cat.jpg dog.png --server localhost:8500

Sends the encoded bytes as they are: decoding, cropping and resizing run inside the model's
`serving_default` signature, which returns the top-k class ids, names and probabilities.
"""

import argparse
import sys

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def build_request(encoded_images, model_name="inception_v3", signature_name="serving_default",
                  version=None):
    """A `PredictRequest` with the images as the `image_bytes` batch (shape [N], DT_STRING)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["image_bytes"].CopyFrom(
        tf.make_tensor_proto(list(encoded_images), dtype=tf.string, shape=[len(encoded_images)])
    )
    return request


def parse_response(response):
    """Per image, the list of `(class_id, class_name, probability)` best first."""
    classes = tf.make_ndarray(response.outputs["classes"])
    names = tf.make_ndarray(response.outputs["class_names"])
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    return [
        [(int(c), n.decode("utf-8"), float(p)) for c, n, p in zip(*row)]
        for row in zip(classes, names, probabilities)
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files")
    parser.add_argument("--server", default="localhost:8500", help="TF Serving gRPC host:port")
    parser.add_argument("--model_name", default="inception_v3")
    parser.add_argument("--version", type=int, help="model version (default: latest)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args(argv)

    encoded = []
    for path in args.images:
        with open(path, "rb") as file:
            encoded.append(file.read())
    request = build_request(encoded, args.model_name, version=args.version)
    with grpc.insecure_channel(args.server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    for path, top in zip(args.images, parse_response(response)):
        print(path)
        for class_id, name, probability in top:
            print(f"  {probability:7.2%}  {class_id:4d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
