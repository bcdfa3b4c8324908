"""Where the plugin's own files are: the plugin folder, its metadata and bundled resources."""

import os

#: The plugin folder (the repository root; ``landfusion`` once installed).
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA_TXT = os.path.join(PLUGIN_DIR, "metadata.txt")
RESOURCES_DIR = os.path.join(PLUGIN_DIR, "resources")
#: Bundled ONNX models with their model cards.
MODELS_DIR = os.path.join(RESOURCES_DIR, "models")
