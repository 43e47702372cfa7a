"""Studies: the experiments of the seed documents as specs, run as ordinary trials, collected into reports.

``spec`` loads a study YAML and expands it into trials, ``runner`` trains
them (skipping finished ones, resuming unfinished ones), ``records`` keeps one
JSON record per trial, ``measure`` adds params, MACs and speed, and
``report`` (with ``tables``, ``plots`` and ``hparams``) turns the records
into results.csv/json, report.md, PNG figures and TensorBoard HParams
summaries. The command line is ``python -m efficientnet_tpu.study``.
"""
