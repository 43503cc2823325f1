"""The live bot's own logic and I/O: reddit through PRAW (``reddit``), whether to answer (``decide``).

The jobs of the online cycle (fetch, decide, generate, post) wire these to the state DB.
"""
