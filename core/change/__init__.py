"""Change between dates: bi-temporal change detection, change models and land-cover transitions.

- :mod:`pairs` opens a BEFORE/AFTER pair on one grid (the second warped onto the first);
- :mod:`features` computes per-pixel change features block-wise with a halo;
- :mod:`model` writes and reads change-model files (ONNX with LandFusion metadata);
- :mod:`training` trains a change model from labelled pairs with leave-one-pair-out validation
  (options, plan, samples, validation and the run, one module each);
- :mod:`detect` maps change with a model, change-vector analysis, SAR log-ratio or an index
  difference; :mod:`magnitude` computes each method's per-pixel magnitude;
- :mod:`landcover` compares class maps block by block; :mod:`transitions` turns the counts into
  the transition matrix, areas and SDG indicator 11.3.1;
- :mod:`report` writes the training and land-cover change reports (HTML, JSON, CSV).
"""
