"""Tasks on a saved reconstruction: instance tracking, open-vocabulary segmentation, scene QA.

Every task starts from an export folder (:func:`iggt.tasks.result.load_result`) and never re-runs
the network.
"""
