"""A trained model outside the workbook: export (ONNX, TorchScript), the inference runtime, and
the verification service.

- ``export``: a checkpoint's embedding network as a file, with its sidecar.
- ``runtime``: an exported file or a checkpoint at inference time (no PyTorch needed for ONNX).
- ``batching``: concurrent requests in one forward pass.
- ``service``: the FastAPI app.
- ``serving``: ``backbone serve`` (and ``python -m backbone.deploy serve``), and the service as a subprocess.
"""
