"""Studies: the experiments of the seed documents as specs, run as ordinary trials, collected into reports.

``spec`` loads a study YAML and expands it into trials, ``runner`` trains
them (skipping finished ones, resuming unfinished ones), ``records`` keeps one
JSON record per trial, ``measure`` adds params, MACs and speed, and
``report`` turns the records into tables and figures. The command line is
``python -m efficientnet_tpu.study``.
"""
