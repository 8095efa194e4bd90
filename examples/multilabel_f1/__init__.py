"""1 - F1 of a multi-label classifier as a tfls task (`examples.multilabel_f1.task:MultiLabelF1Task`)."""
