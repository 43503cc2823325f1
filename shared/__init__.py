"""What the jobs share. Imports only point down (docs/architecture.md, tests/test_layout.py):

    config, cli              ssi-bot.yaml's schema; every command's plumbing
    training/                offline: archives, the training corpus, export, finetune, models
    bot/  state/  generation/  sandbox/     siblings that never import each other
    tagging, filters, records, files, errors   pure text rules and small helpers
"""
