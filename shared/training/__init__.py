"""Offline work that makes a model: archive records (``dumps``, ``archive_api``) into the training
corpus (``corpus``), tagged samples out of it (``export``), finetuning (``finetune``), fresh models
with no download (``model_init``) and the demo model built by that same pipeline (``demo_model``).
"""
