"""MindSpore sources: an ``nn.Cell`` factory and MindSpore zoo entries, exported with ``mindspore.export``.

:mod:`.source` is the parent side (it starts the MindSpore worker and nothing else); :mod:`.child` runs
in that worker; :mod:`.pads` corrects the order in which the export writes explicit Conv2d pads.
"""
