"""Cutover and rollback: flip ``general_settings.use_sdk``, restart, verify, record."""
