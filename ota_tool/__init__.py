"""ota: the host tool for meter keys, images and updates, and for talking to a meter over its serial port."""
