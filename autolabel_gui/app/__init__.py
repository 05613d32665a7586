"""Qt-free use-cases that combine core, detection and formats: a folder's settings and run id,
the review session, the folder report, pre-labelling into VOC files."""
