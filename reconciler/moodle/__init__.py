"""The Moodle web-service client: takes function calls, gives typed answers over REST.

The emulator it is tested against is the sibling package ``reconciler.emulator``.
"""
