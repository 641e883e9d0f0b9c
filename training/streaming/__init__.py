"""The out-of-core implementation of `training.training_data.TrainingData` (`data.streaming=true`).

Events are repartitioned by user hash (`events.partitions`) and streamed one partition at a time:
- `prepare`: `StreamingData` and `prepare_streaming(cfg)`;
- `encoder_counts`: `EncoderCounts` from one streamed pass over the training window;
- `dataset`: `StreamingWindows`, an IterableDataset sharded over DDP ranks x DataLoader workers;
- `streamed_test`: test predictions and metrics per partition.
Heavy imports stay inside the submodules; import them directly.
"""
