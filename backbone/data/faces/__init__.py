"""Faces as the models see them: alignment (MTCNN or centre crops), the content-hashed face cache,
the datasets and transforms that read it, and identity-balanced samplers."""
