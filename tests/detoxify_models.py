"""Tiny Detoxify checkpoints built offline, in the file format Detoxify loads (tests only).

    path = build_checkpoint(tmp_path)                          # random weights: scores near 0.5
    path = build_checkpoint(tmp_path, fixed=[0.9, 0.01, ...])  # every text scores exactly these

A checkpoint is ``torch.save({"config": {"arch": {"args": {...}}, "dataset": {"args":
{"classes": [...]}}}, "state_dict": ...})``; Detoxify builds the model class named in the
args from the config in ``model_type``, which must be a local folder offline (it holds a
2-layer BERT's config.json and a 30-word tokenizer), and loads the state dict into it.
"""

from pathlib import Path

# The labels as the "original" checkpoint stores them; Detoxify renames toxic, severe_toxic
# and identity_hate to toxicity, severe_toxicity and identity_attack.
CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
LABELS = ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
WORDS = "you are a the this is i love hate bread amazing idiot stupid kill , . ! ?".split()
MAX_LENGTH = 64


def build_checkpoint(directory, fixed=None, classes=CLASSES, model_type=None, prefix="", name="tiny.ckpt"):
    """Write a tokenizer folder and a checkpoint under ``directory``; return the checkpoint's path.

    ``fixed``: one probability per class that every text then scores (zero weights and
    bias = logit(p) in the classifier). ``model_type``: what the checkpoint says instead of
    the local folder (a hub id, to test the offline error). ``prefix``: put before every
    state_dict key (PyTorch Lightning writes "model.").
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory = Path(directory)
    folder = directory / "hf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    # model_max_length: Detoxify truncates with it; without it long texts would crash BERT
    BertTokenizer(str(folder / "vocab.txt"), model_max_length=MAX_LENGTH).save_pretrained(folder)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=MAX_LENGTH, num_labels=len(classes))
    config.save_pretrained(folder)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertForSequenceClassification(config)
    if fixed is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.logit(torch.tensor(fixed, dtype=torch.float32)))
    checkpoint = {
        "config": {"arch": {"args": {"model_type": model_type or str(folder),
                                     "model_name": "BertForSequenceClassification",
                                     "tokenizer_name": "BertTokenizer", "num_classes": len(classes)}},
                   "dataset": {"args": {"classes": list(classes)}}},
        "state_dict": {prefix + key: value for key, value in model.state_dict().items()},
    }
    path = directory / name
    torch.save(checkpoint, path)
    return path
