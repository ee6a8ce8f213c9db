"""The HTML shell of every report rosetta writes (bench, retrieve, claims) and its output folder rule.

`html.page` wraps a body in one stylesheet and one image check; `output.prepare_out` creates a report
folder, replacing an earlier report's files only with --overwrite.
"""
