"""Evaluation of a trained model, one module per kind of head (dispatched by ``lmlab.evaluate``)."""
