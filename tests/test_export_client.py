"""export/client.py: request bodies against the tensorflow-serving-api protos and a loopback HTTP double."""

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import tensorflow as tf
from helpers import load_file
from tensorflow_serving.apis import predict_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
client = load_file("tfls_export_client", "export", "client.py")

IMAGES = [b"\x89PNG fake one", b"\xff\xd8\x00 fake two"]


def test_grpc_request_round_trips_through_the_proto():
    request = client.grpc_request("str", IMAGES, version=3)
    parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert parsed.model_spec.name == "str" and parsed.model_spec.signature_name == "serving_default"
    assert parsed.model_spec.version.value == 3
    tensor = tf.make_ndarray(parsed.inputs["image_bytes"])
    assert tensor.dtype == object and list(tensor) == IMAGES
    # Same proto as TensorFlow's own conversion of the same bytes.
    assert parsed.inputs["image_bytes"] == tf.make_tensor_proto(IMAGES, dtype=tf.string)


def test_grpc_response_rows_for_detection_outputs():
    response = predict_pb2.PredictResponse()
    response.outputs["boxes"].CopyFrom(tf.make_tensor_proto(np.arange(16, dtype=np.float32).reshape(1, 2, 8)))
    response.outputs["scores"].CopyFrom(tf.make_tensor_proto(np.array([[0.9, 0.2]], np.float32)))
    response.outputs["num_detections"].CopyFrom(tf.make_tensor_proto(np.array([1], np.int32)))
    rows = client.grpc_outputs_to_rows(response)
    text = client.format_prediction("scene.jpg", rows[0])
    assert text.splitlines() == ["scene.jpg\t1 detections", "  0.900\t0.0,1.0,2.0,3.0,4.0,5.0,6.0,7.0"]


class _Recorder(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Recorder.seen.append((self.path, body))
        if not self.path.startswith("/v1/models/str"):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "Servable not found for request: Latest(nope)"}')
            return
        texts = [base64.b64decode(i["b64"]).decode("latin-1")[-3:] for i in body["instances"]]
        reply = {"predictions": [{"text": t, "confidence": 0.5} for t in texts]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_rest_round_trip_against_loopback_double(server, tmp_path, capsys):
    paths = []
    for i, data in enumerate(IMAGES):
        p = tmp_path / f"w{i}.png"
        p.write_bytes(data)
        paths.append(str(p))
    assert client.main(["--rest", server, "--model", "str", "--version", "2", *paths]) == 0
    path, body = _Recorder.seen[0]
    assert path == "/v1/models/str/versions/2:predict"
    assert body["signature_name"] == "serving_default"
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == IMAGES
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{paths[0]}\tone\t0.5000", f"{paths[1]}\ttwo\t0.5000"]


def test_rest_error_is_reported_with_server_message(server):
    with pytest.raises(RuntimeError, match="404.*Servable not found"):
        client.rest_predict(server, "nope", IMAGES)
