"""Sends images to a TF Serving model exported by tfls and prints what it returns.

REST (port 8501) or gRPC (port 8500); signature `serving_default`, input `image_bytes`:
  python export/client.py --rest=http://localhost:8501 --model=str word1.png word2.jpg
  python export/client.py --grpc=localhost:8500 --model=det scene.jpg
  python export/client.py --rest=http://localhost:8501 --model=ocr photo.jpg
Recognition models return `text` and `confidence`; detection models `boxes [K, 8]` (x1, y1, ..., x4, y4),
`scores [K]` and `num_detections`; the OCR model (`python -m tfls.ocr.export`) `boxes [K, 8]`, `texts [K]`,
`box_scores [K]`, `text_confidences [K]` and `num_words`, the words first and in reading order. The REST
path needs only the standard library; gRPC needs grpcio and tensorflow-serving-api.
"""

import argparse
import base64
import json
import sys
import urllib.request


def rest_body(images, signature="serving_default"):
    """JSON request body (row format): `{"signature_name": ..., "instances": [{"b64": ...}, ...]}`."""
    return {
        "signature_name": signature,
        "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images],
    }


def rest_predict(url, model, images, signature="serving_default", version=None, timeout=30.0):
    """POSTs the images to `<url>/v1/models/<model>[/versions/<v>]:predict`.

    Returns:
      The list of per-image prediction dicts (TF Serving's `predictions`).

    Raises:
      RuntimeError: with the server's message on an HTTP error or a response without `predictions`.
    """
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(rest_body(images, signature)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read().decode())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"TF Serving REST error {e.code} at {url}{path}: {e.read().decode(errors='replace')}") from e
    if "predictions" not in payload:
        raise RuntimeError(f"response from {url}{path} has no 'predictions': {payload}")
    predictions = payload["predictions"]
    # With a single output TF Serving returns bare values instead of dicts.
    return [p if isinstance(p, dict) else {"output": p} for p in predictions]


def grpc_request(model, images, signature="serving_default", version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` carrying the images as a string tensor."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = int(version)
    tensor = request.inputs["image_bytes"]
    tensor.dtype = 7  # DT_STRING
    tensor.tensor_shape.dim.add().size = len(images)
    tensor.string_val.extend(images)
    return request


def grpc_outputs_to_rows(response):
    """PredictResponse -> list of per-image dicts of numpy values."""
    import tensorflow as tf

    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    n = len(next(iter(outputs.values()))) if outputs else 0
    return [{name: value[i] for name, value in outputs.items()} for i in range(n)]


def grpc_predict(address, model, images, signature="serving_default", version=None, timeout=30.0):
    """Calls PredictionService/Predict at `address` (host:port) and returns per-image dicts."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(grpc_request(model, images, signature, version), timeout=timeout)
    return grpc_outputs_to_rows(response)


def format_prediction(name, row):
    """Printable lines per image: text and confidence, the detections, or the words read with their boxes."""
    if "texts" in row:
        n = int(row["num_words"])
        lines = [f"{name}\t{n} words"]
        for text, box, box_score, confidence in list(
            zip(row["texts"], row["boxes"], row["box_scores"], row["text_confidences"])
        )[:n]:
            text = text.decode() if isinstance(text, bytes) else str(text)
            coords = ",".join(f"{float(v):.1f}" for v in box)
            lines.append(f"  {text}\t{float(box_score):.3f}\t{float(confidence):.3f}\t{coords}")
        return "\n".join(lines)
    if "text" in row:
        text = row["text"]
        text = text.decode() if isinstance(text, bytes) else str(text)
        return f"{name}\t{text}\t{float(row['confidence']):.4f}"
    if "boxes" in row:
        n = int(row.get("num_detections", len(row["scores"])))
        lines = [f"{name}\t{n} detections"]
        for box, score in list(zip(row["boxes"], row["scores"]))[:n]:
            coords = ",".join(f"{float(v):.1f}" for v in box)
            lines.append(f"  {float(score):.3f}\t{coords}")
        return "\n".join(lines)
    return f"{name}\t{row}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--rest", help="REST base URL, e.g. http://localhost:8501")
    target.add_argument("--grpc", help="gRPC address, e.g. localhost:8500")
    parser.add_argument("--model", required=True, help="model name in models.config")
    parser.add_argument("--version", type=int, default=None, help="model version (default: latest)")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP, GIF)")
    args = parser.parse_args(argv)
    images = []
    for path in args.images:
        try:
            with open(path, "rb") as f:
                images.append(f.read())
        except OSError as e:
            parser.error(f"cannot read image {path}: {e}")
    if args.rest:
        rows = rest_predict(args.rest, args.model, images, args.signature, args.version, args.timeout)
    else:
        rows = grpc_predict(args.grpc, args.model, images, args.signature, args.version, args.timeout)
    for path, row in zip(args.images, rows):
        print(format_prediction(path, row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
