"""The bot's state: the SQLite DB every job shares (``db``), its versioned opening (``sqlite``),
per-job locks (``lock``), and its snapshots in S3 or a folder (``replica`` over ``storage``).
"""
