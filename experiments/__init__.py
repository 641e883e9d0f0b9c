"""Reading experiments out: the assignment log joined with later purchases, conversion and revenue per arm
with their intervals, the differences to the control, the sample-ratio check, tracked in MLflow
(`signals experiment report`). Imports `events` (the canonical events, the log's format) and `registry`
(the tracking store) only: the readout never needs the service.
"""
