"""Readers of data set layouts: identity folders, LFW (with its protocol files), ND-TWIN-style
twin folders and CelebA; ``load.load_index`` detects which one a folder holds."""
