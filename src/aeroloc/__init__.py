"""aeroloc: locate and georeference historical aerial photographs in modern imagery.

The modules follow the pipeline in the order data flows:
``catalog`` → ``aoi`` → ``preprocess`` → ``models`` → ``heatmap`` → ``candidates``
→ ``verify`` → ``georef`` → ``evaluate``; ``synth`` makes a synthetic archive with
ground truth, and ``cli`` is the command line.
"""

__version__ = "0.1.0"
