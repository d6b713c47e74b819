"""Export feedback as training data: SFT, DPO, KTO, OpenAI fine-tuning JSONL, flat tables.

    from tuneback.export import export_dataset, ExportFilters
    summary = export_dataset(
        store, format="dpo", output="data/", filters=ExportFilters(project="demo")
    )

The rules that turn runs and feedback into rows are in the docstrings of
:mod:`tuneback.export.supervised`, :mod:`tuneback.export.preferences` and
:mod:`tuneback.export.flat`.
"""

from tuneback.export.exporter import ExportProgress, export_dataset
from tuneback.export.filters import DEFAULT_MIN_GAP, DEFAULT_THRESHOLD, ExportFilters, ExportRules
from tuneback.export.formats import FORMATS, ExportFormat
from tuneback.export.summary import ExportSummary, WrittenFile
from tuneback.export.writers import WRITERS

__all__ = [
    "DEFAULT_MIN_GAP",
    "DEFAULT_THRESHOLD",
    "FORMATS",
    "WRITERS",
    "ExportFilters",
    "ExportFormat",
    "ExportProgress",
    "ExportRules",
    "ExportSummary",
    "WrittenFile",
    "export_dataset",
]
