def from_onnx(*a, **k): raise NotImplementedError
