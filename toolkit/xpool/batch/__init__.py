"""The Batch API's pure core: request lines, output lines, the batch object and its statuses,
list pages and the backlog figures. No I/O: the gateway stores and runs batches
(`gateway/batches.py`, `gateway/batch_runner.py`), the adapters keep their bytes
(`adapters/object_store.py`)."""
