"""Out-of-core data path: events repartitioned by user hash into Parquet files, streamed per partition.

- `partitions`: repartition canonical events by a stable hash of user_id (pyarrow, batch by batch);
- `encoder_fit`: the EventEncoder and popularity counts from one streamed pass over the training window;
- `dataset`: `StreamingWindows`, an IterableDataset sharded over DDP ranks x DataLoader workers;
- `evaluate`: test predictions and metrics per partition;
- `prepare` / `run`: the `data.streaming=true` branch of `training.fitting.prepare` and `train_streaming`.
Heavy imports stay inside the submodules; import them directly.
"""
