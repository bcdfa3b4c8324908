"""Change between dates: bi-temporal change detection, change models and land-cover transitions.

- :mod:`pairs` opens a BEFORE/AFTER pair on one grid (the second warped onto the first);
- :mod:`features` computes per-pixel change features block-wise with a halo;
- :mod:`model` writes and reads change-model files (ONNX with LandFusion metadata);
- :mod:`train` trains a change model from labelled pairs with leave-one-pair-out validation;
- :mod:`detect` maps change with a model, change-vector analysis, SAR log-ratio or an index
  difference;
- :mod:`landcover` compares class maps: transition matrix, areas, SDG indicator 11.3.1.
"""
