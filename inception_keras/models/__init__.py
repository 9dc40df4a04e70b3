"""Graph builders for the Inception-v3 variants (Keras 3 layers and ops only)."""
