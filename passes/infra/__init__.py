"""What every pass family stands on: the Pass interface (``base``), matching helpers (``match``,
``conv_attrs``), fresh names (``naming``), the gated manager (``manager``, ``records``), the catalogue and
the presets."""
