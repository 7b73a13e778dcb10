"""Keras / TensorFlow sources: ``keras:NAME``, ``.keras``/``.h5`` files and SavedModel directories, exported
with tf2onnx. ``source`` loads and exports, ``specs`` names the I/O, ``calls`` calls a model, ``init`` draws
realistic random weights, ``tf_compat`` holds the Keras 3 / tf2onnx workarounds active while tracing."""
