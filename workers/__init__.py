"""The worker process: builds the app once and runs rq on Echo's named queues."""
