"""Graph builders for the Inception-v3 variants (Keras 3 layers and ops only).

The classifier layers of every variant carry these names, which are also the keys of a
two-headed model's outputs (`{PREDICTIONS: main, AUX_PREDICTIONS: auxiliary}`): the losses,
the train step, weight loading and the export find the heads by them.
"""

PREDICTIONS = "predictions"
AUX_PREDICTIONS = "aux_predictions"
