"""accelbench: speed and entity F1 of BERT NER across devices, precisions and runtimes."""

__version__ = "0.1.0"
