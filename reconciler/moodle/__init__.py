"""Moodle web services: REST client and test emulator."""
