# The meter application: what OTA updates replace. It runs from an A/B slot directory under the loader.
VERSION = "0.1.0"
LOADER_API = 2
