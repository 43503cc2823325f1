"""The original bot (zacc/ssi-bot), read for operators who migrate from it.

``ini``: its ssi-bot.ini as an equivalent, commented ssi-bot.yaml (``python -m jobs.migrate``).
``keywords``: its regex keywords as ssi-bot's word and ``prefix*`` patterns.
"""
