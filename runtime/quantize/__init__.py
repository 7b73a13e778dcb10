"""Dynamic int8 quantization: the plan (``plan``), the quantizer (``quantizer``), the accuracy gate
(``accuracy``), placement and latency (``performance``), the artifact folder (``manifest``). The flow that
orders them is ``onnxmend.flows.quantize``."""
